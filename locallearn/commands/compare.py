"""``locallearn compare``: a grid of rules x schedules x models over seeds; results JSON, CSV, a table, figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from locallearn.commands.common import add_run_arguments, spec_from_args
from locallearn.paths import check_outputs
from locallearn.compare import data_notes, format_table, plan_grid, run_grid, spec_label, split_entries, summarise
from locallearn.compare_report import sibling_paths, write_outputs
from locallearn.distributed import is_writer
from locallearn.store import RUNS, ResultsStore

GRID_KEYS = ("rules", "schedules", "models", "seeds")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="compare configurations (rules x schedules x models) over seeds",
        description="Train every configuration of a grid once per seed. A rule entry is "
        "RULE[:KEY=VALUE...][@SCHEDULE[:KEY=VALUE...]] (e.g. predsim:beta=0.5, local@sequential); an entry "
        "without @ runs under every --schedules entry. Combinations a schedule refuses are skipped with a note.",
    )
    add_run_arguments(p, skip=("rule", "seed", "checkpoint_path"))  # --rules, --seeds; one run, one checkpoint
    p.add_argument("--rules", default="local,e2e,joint", help="comma-separated rule entries")
    p.add_argument("--schedules", default=None, help="comma-separated schedule entries; None: --schedule alone")
    p.add_argument("--models", default=None, help="comma-separated model entries, e.g. mlp,cnn:channels=(16,32); "
                   "None: --model with --widths / --channels")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    p.add_argument("--grid", default=None, help="a JSON or TOML file with any of: rules, schedules, models (lists of "
                   "entries), seeds (a number); it replaces the matching options")
    p.add_argument("--out", default="results.json", help="the results store (one record per run; "
                   "locallearn.store): an existing one is added to, and the runs already in it are not run again; the "
                   "CSV, Markdown table and figures of every record in it are written beside it")
    p.add_argument("--force", action="store_true", help="start --out afresh (its records are dropped) instead of "
                   "adding to it")
    p.set_defaults(run=run)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else split_entries(text)


def read_grid(path: str) -> dict[str, Any]:
    """A grid file's settings (JSON, or TOML when the name ends in .toml); every fault is one line naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Grid file {path} does not exist.")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark (some editors write one) is fine
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Grid file {path} cannot be read: {error}.") from None
    try:
        if path.endswith(".toml"):
            import tomllib

            grid = tomllib.loads(text)
        else:
            grid = json.loads(text)
    except (ValueError, TypeError) as error:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        kind = "TOML" if path.endswith(".toml") else "JSON"
        raise ValueError(f"Grid file {path} is not valid {kind}: {error}.") from None
    if not isinstance(grid, dict) or set(grid) - set(GRID_KEYS):
        raise ValueError(f"Grid file {path} must hold a table with some of {', '.join(GRID_KEYS)}; "
                         f"got {sorted(grid) if isinstance(grid, dict) else type(grid).__name__}.")
    for key in ("rules", "schedules", "models"):
        value = grid.get(key)
        if isinstance(value, str):
            grid[key] = split_entries(value)
        elif value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"Grid file {path}: {key} must be a list of entries (strings); got {value!r}.")
        if grid.get(key) == []:
            raise ValueError(f"Grid file {path}: {key} is empty; list at least one entry or leave the key out.")
    seeds = grid.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"Grid file {path}: seeds must be a whole number >= 1 (the seeds 0..N-1 are run), "
                         f"such as 3; got {seeds!r}.")
    return grid


def run(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).suffix != ".json":
        raise ValueError(f"--out {args.out} must end in .json: it holds the JSON records, and the CSV, Markdown "
                         f"table and figures are written beside it (such as {Path(args.out).with_suffix('.json')}).")
    siblings = {f"--out's {Path(p).name}": str(p) for p in sibling_paths(args.out).values()} if args.out else {}
    check_outputs(files={"--out": args.out, **siblings}, inputs={"--grid": args.grid})
    grid = read_grid(args.grid) if args.grid else {}
    seeds = grid.get("seeds", args.seeds)
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {seeds}.")
    rules = grid.get("rules", _split(args.rules))
    if not rules:
        raise ValueError(f"--rules names no rule (got {args.rules!r}); give comma-separated rule entries.")
    plan = plan_grid(spec_from_args(args), rules=rules, schedules=grid.get("schedules", _split(args.schedules)),
                     models=grid.get("models", _split(args.models)))
    for note in plan.skipped:
        print(f"skipped {note}")
    if not plan.specs:
        raise ValueError("Every combination of the grid was refused; nothing to run.")
    store = ResultsStore(args.out, kind=RUNS, fresh=args.force)  # another schema or kind: refused before any run
    print(f"{len(plan.specs)} configurations x {seeds} seeds: {', '.join(spec_label(s) for s in plan.specs)}")
    records = run_grid(plan.specs, seeds=list(range(seeds)), store=store, command=args.command_line)
    print(f"{records.ran} runs done now, {len(records) - records.ran} already in {args.out}")
    if not is_writer():  # under torchrun rank 0 reports and writes
        return 0
    paths = write_outputs(store.records, args.out, command=args.command_line)
    rows = summarise(store.records)
    print("\n".join([format_table(rows), *data_notes(rows)]))
    print(f"{len(store.records)} records in {args.out}; also {', '.join(p.name for p in paths)}")
    return 0
