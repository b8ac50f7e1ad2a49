"""``locallearn compare``: several rules x seeds on the same setting; a table and results JSON."""

from __future__ import annotations

import argparse

from locallearn import io
from locallearn.commands.common import add_run_arguments, spec_from_args
from locallearn.compare import compare, format_table, summarise


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compare", help="compare rules side by side over seeds")
    add_run_arguments(p, rule=False)
    p.add_argument("--rules", default="local,e2e,joint", help="comma-separated rule names")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    p.add_argument("--out", default="results.json", help="results JSON (a list of records)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}.")
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    if not rules:
        raise ValueError(f"--rules names no rule (got {args.rules!r}); give comma-separated rule names.")
    records = compare(spec_from_args(args), rules=rules, seeds=list(range(args.seeds)))
    io.write_json(args.out, records)
    print(format_table(summarise(records)))
    print(f"{len(records)} records written to {args.out}")
    return 0
