"""``locallearn merge A B ... --out C``: join results stores written by separate processes (``locallearn.merge``)."""

from __future__ import annotations

import argparse

from locallearn.merge import DESCRIPTION, add_arguments, run


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge", help="join results stores written by separate processes", description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(run=run)
