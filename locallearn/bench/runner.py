"""Run a suite: resumable cells, a progress bar with an ETA, and the run's provenance.

The cells of one seed, dataset and model train in turns, one epoch each (see
``locallearn.bench.cell.run_cells``). Finished cells live in ``cells.json`` in the output folder, keyed by their full
spec and rewritten atomically after every cell; a cell already there is not
run again. Each invocation gets a ``session`` id, so a table can tell whether
a ratio mixes timings from different invocations.

Example:
    >>> import tempfile
    >>> from locallearn.bench.suites import Cell, Suite
    >>> from locallearn.experiment import RunSpec
    >>> tiny = Suite("tiny", "doc example", RunSpec(widths=(8,), epochs=1), ("synthetic",), {"mlp": {}},
    ...              {"simultaneous": ("e2e", "local")}, seeds=1)
    >>> out = tempfile.mkdtemp()
    >>> len(run_suite(tiny, out=out, progress=False)), run_suite(tiny, out=out, progress=False).ran
    (2, 0)
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from locallearn import data as datasets
from locallearn import io
from locallearn.bench.cell import run_cells
from locallearn.provenance import git_revision, load_average
from locallearn.bench.suites import Cell, Suite

STORE = "cells.json"
RUNS = "runs.json"


class CellStore:
    """Finished cells of one output folder, by key; saved atomically on every ``add``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = io.read_json(self.path) if self.path.is_file() else []
        self._keys = {r["key"] for r in self.records}

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._keys.add(record["key"])
        io.write_json(self.path, self.records)


class SuiteRun(list):
    """The records of a suite's cells (finished before or now); ``ran`` counts the cells run now."""

    ran: int = 0


def start_invocation(out: Path, *, suite: str, command: str, cells: int, cells_to_run: int, **fields: Any) -> str:
    """Append this invocation's provenance to ``out/runs.json`` (command, git commit, machine, date, load);
    return its session id, which every record it produces carries."""
    session = uuid.uuid4().hex[:8]
    path = out / RUNS
    runs = io.read_json(path) if path.is_file() else []
    runs.append({
        "session": session, "suite": suite, "command": command, **fields, "git": git_revision(), "machine": io.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_start": load_average(), "cells": cells,
        "cells_to_run": cells_to_run,
    })
    io.write_json(path, runs)
    return session


def finish_invocation(out: Path, session: str) -> None:
    """Record the end (load average, time) of the invocation ``session`` in ``out/runs.json``."""
    path = out / RUNS
    runs = io.read_json(path)
    for run in runs:
        if run["session"] == session:
            run.update(load_end=load_average(), finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    io.write_json(path, runs)


def run_suite(
    suite: Suite,
    *,
    out: str | Path,
    seeds: int | None = None,
    epochs: int | None = None,
    train_size: int | None = None,
    eval_size: int | None = None,
    first_seed: int = 0,
    rule_entries: Sequence[str] | None = None,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str = "",
    run: bool = True,
) -> SuiteRun:
    """Run every cell of ``suite`` not yet in ``out/cells.json``; return all its cells' finished records.

    With ``run=False`` nothing is run or recorded: the records already finished are returned.
    """
    out = Path(out)
    cells = [dataclasses.replace(c, spec=dataclasses.replace(c.spec, device=device)) for c in suite.cells(seeds=seeds, epochs=epochs, train_size=train_size,
                                                                                                      eval_size=eval_size, first_seed=first_seed, rule_entries=rule_entries)]
    store = CellStore(out / STORE)
    order = {c.key: i for i, c in enumerate(cells)}
    result = SuiteRun(sorted((r for r in store.records if r["key"] in order), key=lambda r: order[r["key"]]))
    todo = [c for c in cells if c.key not in store]
    if not run or not todo:
        return result
    session = start_invocation(out, suite=suite.name, command=command, cells=len(cells), cells_to_run=len(todo),
                               seeds=seeds, epochs=epochs, train_size=train_size, eval_size=eval_size,
                               first_seed=first_seed, rule_entries=rule_entries, device=device)
    loaded: dict[tuple, datasets.Dataset] = {}
    total, done = sum(c.units() for c in cells), sum(c.units() for c in cells if c.key in store)
    bar = tqdm(total=total, initial=done, unit="stage-epoch", disable=not progress, desc=suite.name)
    groups: dict[tuple, list[Cell]] = {}  # cells of one seed, data and model train in turns
    for cell in todo:
        groups.setdefault((cell.spec.seed, cell.spec.data, cell.spec.val_size, cell.model_label), []).append(cell)
    for (seed, data, val_size, label), group in groups.items():
        bar.set_description(f"{suite.name}: {data}/{label}/seed {seed}, {len(group)} cells in turns")
        if (data, val_size) not in loaded:
            loaded[data, val_size] = datasets.load(data, data_dir=None if data in datasets.NO_FOLDER else data_dir, **({} if val_size is None else {"val_size": val_size}))
        for record in run_cells(group, loaded[data, val_size], bar=bar):
            record["session"] = session
            store.add(record)
            result.append(record)
            result.ran += 1
    result.sort(key=lambda r: order[r["key"]])
    bar.close()
    finish_invocation(out, session)
    return result
