"""Run a suite: resumable cells, a progress bar with an ETA, and the run's provenance.

The cells of one seed, dataset and model train in turns, one epoch each (see
``locallearn.bench.cell.run_cells``). Finished cells live in ``cells.json`` in the output folder, a results store
(``locallearn.store``) keyed by each cell's full spec and rewritten atomically after every cell; a cell already
there is not run again. Each invocation's provenance is a ``runs`` entry of the store with a ``session`` id that
its records carry, so a table can tell whether a ratio mixes timings from different invocations.

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
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from locallearn import data as datasets
from locallearn.bench.cell import run_cells
from locallearn.bench.suites import Cell, Suite
from locallearn.provenance import finish, provenance
from locallearn.store import FOLDER_STORE, RUNS, ResultsStore

STORE = FOLDER_STORE  # out/cells.json: a results store (locallearn.store) of kind "runs"


def open_store(out: Path, *, kind: str = RUNS) -> ResultsStore:
    """The results store of a benchmark's output folder, ``out/cells.json``."""
    return ResultsStore(out / STORE, kind=kind)


class SuiteRun(list):
    """The records of a suite's cells (finished before or now); ``ran`` counts the cells run now."""

    ran: int = 0


def start_invocation(store: ResultsStore, *, suite: str, command: str, cells: int, cells_to_run: int, **fields: Any) -> str:
    """Add this invocation's provenance (``locallearn.provenance``: command, version, git commit, machine, date,
    load) to the store's runs; return its session id, which every record it produces carries."""
    return store.start_run(provenance(command, suite=suite, **fields, cells=cells, cells_to_run=cells_to_run))


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
    store = open_store(out)
    order = {c.key: i for i, c in enumerate(cells)}
    result = SuiteRun(sorted((r for r in store.records if r["key"] in order), key=lambda r: order[r["key"]]))
    done = {r["key"] for r in store.records}
    todo = [c for c in cells if c.key not in done]
    if not run or not todo:
        return result
    session = start_invocation(store, suite=suite.name, command=command, cells=len(cells), cells_to_run=len(todo),
                               seeds=seeds, epochs=epochs, train_size=train_size, eval_size=eval_size,
                               first_seed=first_seed, rule_entries=rule_entries, device=device)
    loaded: dict[tuple, datasets.Dataset] = {}
    total, finished = sum(c.units() for c in cells), sum(c.units() for c in cells if c.key in done)
    bar = tqdm(total=total, initial=finished, unit="stage-epoch", disable=not progress, desc=suite.name)
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
    store.update_run(session, **finish())
    return result
