"""``locallearn bench NAME [options]``: run a benchmark suite or program (see ``locallearn.bench``)."""

from __future__ import annotations

import argparse

from locallearn.bench.main import main as bench_main
from locallearn.bench.main import suite_names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="run a benchmark suite or program (see benchmarks/README.md)",
                              description="Run a benchmark suite or program; `locallearn bench NAME --help` lists its options.")
    p.add_argument("suite", help=f"one of: {', '.join(suite_names())}")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the suite's or program's options")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return bench_main([args.suite, *args.options], prog="locallearn bench")
