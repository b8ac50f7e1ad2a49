"""``locallearn bench SUITE``: run a benchmark suite (see ``locallearn.bench``)."""

from __future__ import annotations

import argparse

from locallearn.bench.main import add_arguments
from locallearn.bench.main import run as run_bench


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="run a benchmark suite (quick, engine, fashion, paper, memory)")
    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_bench(args, prog="locallearn bench")
