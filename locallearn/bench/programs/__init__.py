"""Benchmarks that are not a training grid (early exits, information planes, KSG speed, pipeline throughput,
data-loading memory),
run by the same harness as the suites: ``python -m benchmarks NAME [options]``.

A program module defines ``TITLE``, ``DESCRIPTION``, ``add_arguments(parser)`` (its options; the defaults are
the committed setting), ``cells(args)`` (its units of work, each a dict with the settings its result depends
on), ``run(todo, args, add)`` (runs the cells not yet finished and passes each record to ``add`` as it
finishes) and ``report(records, args, out)`` (Markdown lines; it may write figures into ``out``). The
harness keeps the records in ``out/cells.json``, a results store of kind ``program:NAME`` (``locallearn.store``),
keyed by their cell (a finished cell is not run again), with each invocation's provenance, and writes ``out/results.md`` in the suites'
shape; ``--report-only`` rewrites the report from the finished cells without running any. A hand-written
``out/notes.md`` (the reading of the numbers) is appended to the report as it is.

Example:
    >>> sorted(PROGRAMS)
    ['char_lm', 'compile_speed', 'conformal', 'cuts', 'data_memory', 'early_exit', 'exit_curves', 'gcn_nodes', 'infoplane', 'ksg_speed', 'memory_time', 'pipeline_throughput', 'throughput', 'vit_fashion']
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import torch

from locallearn.bench.report import write_markdown
from locallearn.bench.results_dir import results_folder
from locallearn.bench.runner import open_store, start_invocation
from locallearn.provenance import finish

NOTES = "notes.md"  # hand-written reading of the results, kept beside them and appended to the report
PROGRAMS = {name: f"locallearn.bench.programs.{name}" for name in (
    "char_lm", "compile_speed", "conformal", "cuts", "data_memory", "early_exit", "exit_curves", "gcn_nodes", "infoplane", "ksg_speed",
    "memory_time", "pipeline_throughput", "throughput", "vit_fashion")}


def cell_key(cell: dict[str, Any]) -> str:
    """A program cell's identity in the store: its settings as canonical JSON."""
    return json.dumps(cell, sort_keys=True, default=list)


def build_parser(name: str, module: ModuleType, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=module.DESCRIPTION,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=str(results_folder(name)), help="output folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished cells; run none")
    module.add_arguments(parser)
    return parser


def run_program(name: str, argv: Sequence[str], *, prog: str = "python -m benchmarks") -> Path:
    """Parse ``argv`` with the program's options, run its unfinished cells, write its report; return the report."""
    module = importlib.import_module(PROGRAMS[name])
    args = build_parser(name, module, prog).parse_args(list(argv))
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}.")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    cells = [{"program": name, **c} for c in module.cells(args)]
    keys = [cell_key(c) for c in cells]
    store = open_store(out, kind=f"program:{name}")
    done = {r["key"] for r in store.records}
    todo = [c for c, k in zip(cells, keys) if k not in done]
    if todo and not args.report_only:
        session = start_invocation(store, suite=name, command=shlex.join([*prog.split(), name, *argv]), cells=len(cells),
                                   cells_to_run=len(todo))

        def add(cell: dict[str, Any], record: dict[str, Any]) -> None:
            store.add({**record, "cell": {"program": name, **cell}, "key": cell_key({"program": name, **cell}),
                       "session": session})

        module.run([{k: v for k, v in c.items() if k != "program"} for c in todo], args, add)
        store.update_run(session, **finish())
    order = {k: i for i, k in enumerate(keys)}
    records = sorted((r for r in store.records if r["key"] in order), key=lambda r: order[r["key"]])
    if not records:
        raise ValueError(f"No finished cells of {name!r} with these settings in {out}; run it without --report-only "
                         "first (or give the settings it was run with).")
    notes = out / NOTES
    return write_markdown(out, title=module.TITLE, description=module.DESCRIPTION,
                          body=[*module.report(records, args, out), "", *([notes.read_text()] if notes.is_file() else [])])
