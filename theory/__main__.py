"""``python -m theory [--fast] [--out PATH] [--only T6,T7]``: run the checks of every claim and write theory/RESULTS.md.

Example (the command line; the suite imports this module without running it):
    >>> from theory.__main__ import CHECKS
    >>> [claim for claim, _ in CHECKS][:3]
    ['T1', 'T2', 'T3']
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import locallearn as ll
from locallearn.io import machine

from . import (
    t01_locality, t02_memory, t03_fa_equals_bp, t04_cascaded_cost, t05_kde_bounds, t06_error_propagation,
    t07_linear_separability, t08_non_worsening, t09_deep_supervision, t10_exit_placement, t11_feedback_alignment,
    t12_data_processing,
)
from .report import render, write_atomically

CHECKS = [
    ("T1", t01_locality.check), ("T2", t02_memory.check), ("T3", t03_fa_equals_bp.check),
    ("T4", t04_cascaded_cost.check), ("T5", t05_kde_bounds.check), ("T6", t06_error_propagation.check),
    ("T7", t07_linear_separability.check), ("T8", t08_non_worsening.check), ("T9", t09_deep_supervision.check),
    ("T10", t10_exit_placement.check), ("T11", t11_feedback_alignment.check), ("T12", t12_data_processing.check),
]


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    return out.stdout.strip()


def _revision() -> str:
    """The commit, marked when theory/ or locallearn/ differ from it (other than RESULTS.md)."""
    try:
        changed = [line for line in _git("status", "--porcelain", "--", "theory", "locallearn").splitlines()
                   if not line.endswith("RESULTS.md")]
        return _git("rev-parse", "--short", "HEAD") + (" with uncommitted changes" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theory", description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the small versions the test suite runs")
    parser.add_argument("--only", default="", help="comma-separated claims, e.g. T6,T7 (default: all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS.md"), help="where to write the report")
    args = parser.parse_args(argv)
    only = {c.strip().upper() for c in args.only.split(",") if c.strip()}
    unknown = only - {claim for claim, _ in CHECKS}
    if unknown:
        parser.error(f"unknown claims {sorted(unknown)}; known: {', '.join(c for c, _ in CHECKS)}")
    torch.set_num_threads(1)
    wall, results = time.perf_counter(), []
    for claim, check in CHECKS:
        if only and claim not in only:
            continue
        outcome = check(fast=args.fast)  # one Result, or one per case with its own verdict (T12: per estimator)
        for result in outcome if isinstance(outcome, list) else [outcome]:
            print(f"{result.claim:>4} {result.verdict:<30} {result.seconds:6.1f} s CPU  {result.summary}", flush=True)
            results.append(result)
    command = "python -m theory" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    provenance = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "locallearn": f"{ll.__version__} (git {_revision()})",
        "machine": ", ".join(f"{k} {v}" for k, v in machine().items() if v is not None),
        "load average at the end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "total": f"{time.perf_counter() - wall:.0f} s wall, {sum(r.seconds for r in results):.0f} s CPU (1 torch thread)",
    }
    write_atomically(args.out, render(results, command=command, provenance=provenance))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
