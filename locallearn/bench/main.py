"""The benchmark command line, shared by ``locallearn bench`` and ``python -m benchmarks``.

Example:
    >>> parser = build_parser()
    >>> parser.parse_args(["quick", "--seeds", "1"]).seeds
    1
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

import torch

from locallearn.paths import check_outputs
from locallearn.plugin_option import load_from_command_line, plugin_parent
from locallearn.device import resolve_device

from locallearn.bench.results_dir import results_folder
from locallearn.bench.suites import SUITES

MEMORY = "memory"
DATA_PATH = "data-path"  # augmentation and DataLoader cost against in-memory tensors
README = "readme"  # not a suite: rewrites the READMEs' generated blocks from the committed results
MERGE = "merge"  # not a suite: joins results stores written by separate processes (locallearn.merge)


def suite_names() -> list[str]:
    from locallearn.bench.programs import PROGRAMS

    return [*SUITES, MEMORY, DATA_PATH, *PROGRAMS, README, MERGE]


def _rule_entries(text: str) -> list[str]:
    entries = [r for r in text.split(",") if r]
    if not entries:
        raise argparse.ArgumentTypeError("give one rule entry or more, comma-separated (e.g. e2e,predsim)")
    return entries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark run."""
    parser.add_argument("suite", help=f"one of: {', '.join(suite_names())} (a program takes its own options: NAME --help)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default: the suite's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per cell (default: the suite's)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train every cell on the first N training images only (a smoke run; default: all)")
    parser.add_argument("--eval-size", type=int, default=None,
                        help="evaluate every cell on the first N validation and N test images only (a smoke run; default: all)")
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds FIRST .. FIRST + seeds - 1")
    parser.add_argument("--rules", type=_rule_entries, default=None,
                        help="comma-separated rule entries: run (or report) only these cells of the suite (default: all)")
    parser.add_argument("--out", default=None, help="output folder (default: the repository's benchmarks/results/SUITE, from any directory)")
    parser.add_argument("--data-dir", default=None, help="folder of IDX files for fashion-mnist / mnist")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: CPU time is then the work done, even on a shared machine)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="where the cells run")
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished cells; run none")
    parser.add_argument("--check", action="store_true", help="with readme: list the stale blocks and fail; write nothing")


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a locallearn benchmark suite.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter, parents=[plugin_parent()])
    add_arguments(parser)
    return parser


def command_line(prog: str, args: argparse.Namespace) -> str:
    """The command that repeats this run, as recorded in the results."""
    words = [prog, args.suite]
    for option in ("seeds", "first_seed", "epochs", "train_size", "eval_size", "rules", "out", "data_dir", "threads", "device"):
        value = getattr(args, option, None)
        if value is not None and not (option == "device" and value == "cpu") and not (option == "first_seed" and value == 0):
            words += [f"--{option.replace('_', '-')}", ",".join(value) if option == "rules" else str(value)]
    return " ".join(shlex.quote(w) if w != prog else w for w in words)


def run(args: argparse.Namespace, *, prog: str = "python -m benchmarks") -> int:
    """Run the suite named by ``args``, then write its CSV, Markdown table and plots."""
    command = command_line(prog, args)
    if args.suite not in suite_names():
        raise ValueError(f"Unknown suite {args.suite!r}. Known suites: {', '.join(suite_names())}.")
    for option in ("seeds", "epochs", "train_size", "eval_size"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise ValueError(f"--{option} must be >= 1; got {value}.")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}.")
    torch.set_num_threads(args.threads)
    if args.suite == README:
        return run_readme(check=args.check)
    resolve_device(args.device)  # a GPU asked for and missing fails before any work
    out = Path(args.out) if args.out else results_folder(args.suite)
    check_outputs(folders={"--out": str(out)})  # before any cell runs
    if args.suite == MEMORY:
        from locallearn.bench.memory import run_memory

        path = run_memory(out=out, data_dir=args.data_dir, command=command)
    elif args.suite == DATA_PATH:
        from locallearn.bench.data_path import run_data_path

        path = run_data_path(out=out, data_dir=args.data_dir, epochs=args.epochs or 3, command=command)
    else:
        from locallearn.bench.report import write_report
        from locallearn.bench.runner import run_suite

        suite = SUITES[args.suite]
        records = run_suite(suite, out=out, seeds=args.seeds, epochs=args.epochs, train_size=args.train_size,
                            eval_size=args.eval_size, first_seed=args.first_seed, rule_entries=args.rules,
                            data_dir=args.data_dir,
                            device=args.device, progress=not args.no_progress, command=command, run=not args.report_only)
        if not records:
            raise ValueError(f"No finished cells of suite {args.suite!r} with these seeds and epochs in {out}; "
                             "run it without --report-only first (or give the --seeds / --epochs it was run with).")
        path = write_report(suite, records, out=out)
        print(f"{records.ran} cells run, {len(records) - records.ran} already done")
    print(Path(path).read_text())
    print(f"results in {out}")
    return 0


def run_readme(*, check: bool) -> int:
    """Rewrite (or, with ``check``, only list) the READMEs' generated blocks."""
    from locallearn.bench import readme

    if check:
        stale = readme.stale()
        print("stale: " + ", ".join(stale) if stale else "every generated block matches the committed results")
        return 1 if stale else 0
    changed = readme.update()
    print("rewrote: " + ", ".join(changed) if changed else "every generated block already matched the committed results")
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m benchmarks") -> int:
    """Run a suite, a program (its own options: ``NAME --help``), ``readme`` or ``merge``."""
    from locallearn.bench.programs import PROGRAMS, run_program

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = load_from_command_line(argv)  # --plugin, anywhere: outside rules etc. for the suite or program
        if argv and argv[0] == MERGE:
            from locallearn.merge import main as merge_main

            return merge_main(argv[1:], prog=prog)
        if argv and argv[0] in PROGRAMS:
            path = run_program(argv[0], argv[1:], prog=prog)
            print(Path(path).read_text())
            print(f"results in {path.parent}")
            return 0
        return run(build_parser(prog).parse_args(argv), prog=prog)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
