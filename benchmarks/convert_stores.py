"""One-off conversion of the results written before the results store (plain JSON lists) into stores
(``locallearn.store``, schema version 2): ``python benchmarks/convert_stores.py [PATH ...]``.

With no PATH it converts every such file under ``benchmarks/results``: each folder's ``cells.json`` (a suite's or a
program's cells; the folder's ``runs.json`` becomes the store's ``runs`` and is removed) and the ``compare``
results (``demo/results.json``, ``bio_rules_digits/results.json``). A record keeps every field it had, but for
the moves that make it the one record schema (``locallearn.compare.run_record``):

- a ``compare`` record's ``exits`` list of dicts becomes its ``test_accuracy`` and ``val_accuracy`` lists;
- ``rule_kw`` and ``schedule_kw`` are read from its key where it lacks them;
- its ``version`` and ``machine`` move to the provenance (``runs``) entry of its ``session``; records that had no
  session (``compare``'s) get one entry, whose command is read from the report beside them.

A suite's store whose every key predates a RunSpec field gets that field at the value every run then had (the
code of the time had no other): ``compile`` false (eager), ``model_kw`` and ``head_kw`` empty, and ``head``
``"linear"`` of an ``mlp`` or ``cnn`` as today's ``None`` (the family's own head: linear for the MLP; for the CNN
the code of the time turned ``"linear"`` into the conv head, which is today's default), so that the suite's cells
find them again (``python -m benchmarks SUITE --report-only``). A store where only some keys predate a field
(``paper-3ep``: two code versions) is left as it is.

A store already converted is left alone, so running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from locallearn import io
from locallearn.store import FOLDER_STORE, RUNS, ResultsStore

RESULTS = Path(__file__).resolve().parent / "results"
COMPARE_STORES = ("demo/results.json", "bio_rules_digits/results.json")
LEGACY_SESSION = "before-store"  # the session given to records that were written without one


def _options(record: dict[str, Any]) -> dict[str, Any]:
    key = record["key"] if isinstance(record["key"], dict) else json.loads(record["key"])
    return {"rule_kw": key.get("rule_kw", {}), "schedule_kw": key.get("schedule_kw", {})}


def convert_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record of a training run in the one schema (the fields it had kept, ``exits`` unfolded)."""
    record = dict(record)
    if "exits" in record:
        exits = record.pop("exits")
        record["test_accuracy"] = [e["test_accuracy"] for e in exits]
        record["val_accuracy"] = [e["val_accuracy"] for e in exits]
    for name, value in _options(record).items():
        record.setdefault(name, value)
    return record


def _command_beside(path: Path) -> str | None:
    report = path.with_suffix(".md")
    found = re.search(r"^Command: `(.*)`$", report.read_text(), re.M) if report.is_file() else None
    return found.group(1) if found else None


def rekey(records: list[dict[str, Any]]) -> bool:
    """Give the cell keys of a suite's store the RunSpec fields added after every one of them was written (see the
    module docstring); ``True`` when a key changed."""
    keys = [json.loads(r["key"]) for r in records if isinstance(r.get("key"), str)]
    if not records or len(keys) < len(records):
        return False
    changed = False
    if all("compile" not in k for k in keys):
        for k in keys:
            k["compile"] = False
        changed = True
    if all("model_kw" not in k and "head_kw" not in k for k in keys):
        for k in keys:
            k.update(model_kw={}, head_kw={}, head=None if k.get("head") == "linear" and k["model"] in ("mlp", "cnn") else k.get("head"))
        changed = True
    for record, key in zip(records, keys):
        record["key"] = json.dumps(key, sort_keys=True, default=list)  # the form of Cell.key
    return changed


def convert(path: Path) -> bool:
    """Convert the plain list in ``path`` (a store file) into a store, or re-key a suite's store (``rekey``);
    ``False`` when there was nothing to do."""
    records = io.read_json(path)
    if isinstance(records, dict):
        store = ResultsStore(path, kind=records.get("kind", RUNS))
        if store.kind != RUNS or not rekey(store.records):
            return False
        store.save()
        return True
    program = next((r["cell"]["program"] for r in records if isinstance(r.get("cell"), dict) and "program" in r["cell"]), None)
    kind = RUNS if program is None else f"program:{program}"
    runs_path = path.parent / "runs.json"
    runs = io.read_json(runs_path) if path.name == FOLDER_STORE and runs_path.is_file() else []
    if program is None:
        records = [convert_record(r) for r in records]
    by_session = {r["session"]: r for r in runs}
    for record in records:
        moved = {k: record.pop(k) for k in ("version", "machine") if k in record}
        if "session" not in record:
            record["session"] = LEGACY_SESSION
            if LEGACY_SESSION not in by_session:
                by_session[LEGACY_SESSION] = {"session": LEGACY_SESSION, "command": _command_beside(path),
                                              "converted_by": "python benchmarks/convert_stores.py"}
                runs.append(by_session[LEGACY_SESSION])
        run = by_session.get(record["session"])
        for field, value in moved.items():
            if run is not None and run.setdefault(field, value) != value:
                record[field] = value  # a record that differs from its session's keeps its own
    store = ResultsStore(path, kind=kind, fresh=True)
    store.runs = runs
    store.append(records)
    store.save()  # a store of no records is written too
    if runs_path.is_file() and path.name == FOLDER_STORE:
        runs_path.unlink()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="store files (default: every one under benchmarks/results)")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.paths] or sorted([*RESULTS.glob(f"*/{FOLDER_STORE}"), *(RESULTS / p for p in COMPARE_STORES)])
    for path in paths:
        print(f"{'converted' if convert(path) else 'already a store'}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
