"""The merge command, ``locallearn merge A B ... --out C`` and ``python -m benchmarks merge A B --out C``: join
results stores written by separate processes (``locallearn.store.merge_stores``).

A folder (a benchmark's output folder) stands for its ``cells.json``. ``--out`` may be new or an existing store of
the same kind (then the sources are added to it).

Example:
    >>> import os, tempfile
    >>> from locallearn.store import ResultsStore
    >>> folder = tempfile.mkdtemp()
    >>> for name, seed in (("a", 0), ("b", 1)):
    ...     _ = ResultsStore(os.path.join(folder, name, "cells.json"), kind="runs").append([{"key": "k", "seed": seed}])
    >>> main([os.path.join(folder, "a"), os.path.join(folder, "b"), "--out", os.path.join(folder, "c")], prog="locallearn")  # doctest: +ELLIPSIS
    2 records of 0 runs in .../c/cells.json (runs)
    write its report with: python -m benchmarks SUITE --report-only --out .../c
    0
"""

from __future__ import annotations

import argparse
from typing import Sequence

from locallearn.store import FOLDER_STORE, merge_stores, store_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", help=f"results stores (a file, or a folder holding {FOLDER_STORE})")
    parser.add_argument("--out", required=True, help=f"the joined store (a file, or a folder: its {FOLDER_STORE}); "
                        "an existing store of the same kind is added to")


DESCRIPTION = ("Join results stores written by separate processes (runs by session, records by configuration key "
               "and seed; a record in two stores keeps its first copy) into --out.")


def run(args: argparse.Namespace) -> int:
    out = store_path(args.out)
    if out.suffix != ".json":  # a folder not made yet: the benchmark layout
        out = out / FOLDER_STORE
    merged, left_out = merge_stores([store_path(s) for s in args.sources], out)
    print(f"{len(merged)} records of {len(merged.runs)} runs in {out} ({merged.kind})"
          + (f"; {left_out} records already there left out (a configuration and seed run twice: the first copy kept)"
             if left_out else ""))
    if out.name == FOLDER_STORE:
        print(f"write its report with: python -m benchmarks SUITE --report-only --out {out.parent}")
    return 0


def main(argv: Sequence[str], *, prog: str) -> int:
    """``merge`` outside the ``locallearn`` command (``python -m benchmarks merge``)."""
    parser = argparse.ArgumentParser(prog=f"{prog} merge", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))
