"""The results store: one JSON file of records, keyed by configuration key and seed, with its runs' provenance.

A store file is an object ``{"schema": "locallearn-results", "schema_version": 2, "kind": KIND, "runs": [...],
"records": [...]}``. ``kind`` says what its records are (``"runs"``: training runs, one per configuration and
seed; ``"program:NAME"``: the cells of a benchmark program), and a store is only ever opened as the kind it was
written as. A record is identified by its ``key`` (the configuration: everything but the seed) and its
``seed``; :meth:`ResultsStore.append` skips a record already there, which is what makes a grid resumable. A
``runs`` entry is one invocation's provenance (its ``session`` id, command, version, commit, machine, load);
each record it wrote carries that ``session``.

Every write goes through :mod:`locallearn.io` (atomic; mode 0644 under the usual umask), after each record, so
a killed run loses at most the record it was on. A store has one writer: two processes write two stores, and
:func:`merge_stores` (``locallearn merge A B --out C``, or ``python -m benchmarks merge``) joins them.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> store = ResultsStore(path, kind="runs")
    >>> [r["seed"] for r in store.append([{"key": {"rule": "local"}, "seed": 0}, {"key": {"rule": "local"}, "seed": 1}])]
    [0, 1]
    >>> ResultsStore(path, kind="runs").append([{"key": {"rule": "local"}, "seed": 1}])  # already there: skipped
    []
    >>> ResultsStore(path, kind="program:cuts")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ... holds 'runs' records; it cannot be opened as a 'program:cuts' store.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

from locallearn import io

SCHEMA = "locallearn-results"
SCHEMA_VERSION = 2  # 1: compare's records held an ``exits`` list of dicts; 2: every record has per-exit lists
RUNS = "runs"  # the kind of a store of training runs (compare, the benchmark suites)
FOLDER_STORE = "cells.json"  # the store of a benchmark's output folder


def store_path(path: str | Path) -> Path:
    """The store file ``path`` names: a folder (a benchmark's output) stands for its ``cells.json``.

    Example:
        >>> import tempfile
        >>> store_path(tempfile.mkdtemp()).name, store_path("r.json").name
        ('cells.json', 'r.json')
    """
    path = Path(path)
    return path / FOLDER_STORE if path.is_dir() else path


def record_id(record: dict[str, Any]) -> str:
    """A record's identity in a store: its configuration ``key`` and its ``seed`` (``None`` where it has none),
    as canonical JSON.

    Example:
        >>> record_id({"key": {"rule": "local", "lr": 0.1}, "seed": 2})
        '[{"lr": 0.1, "rule": "local"}, 2]'
    """
    if not isinstance(record, dict) or "key" not in record:
        raise ValueError(f"A results record must be a dict with a 'key' (its configuration); got "
                         f"{sorted(record) if isinstance(record, dict) else type(record).__name__}.")
    return json.dumps([record["key"], record.get("seed")], sort_keys=True, default=list)


def _read(path: Path) -> dict[str, Any]:
    """The store object in ``path``, checked for shape; every fault is one line naming the file."""
    try:
        data = io.read_json(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Results store {path} cannot be read: {error}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"Results store {path} is not valid JSON ({error}); it was not written by locallearn "
                         "or was damaged.") from None
    if isinstance(data, list):
        raise ValueError(f"Results store {path} is a plain list of records, written before the results store "
                         f"(schema version 0); this version reads {SCHEMA} version {SCHEMA_VERSION} only: convert it with "
                         "`python benchmarks/convert_stores.py FILE` (in the locallearn repository).")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a locallearn results store (no \"schema\": \"{SCHEMA}\" in it).")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"Results store {path} has schema version {data.get('schema_version')!r}; this version of "
                         f"locallearn reads version {SCHEMA_VERSION} only.")
    if not isinstance(data.get("kind"), str) or not isinstance(data.get("records"), list) \
            or not isinstance(data.get("runs"), list):
        raise ValueError(f"Results store {path} is damaged: it needs a 'kind' (text), 'records' and 'runs' (lists).")
    return data


class ResultsStore:
    """The records of one store file, by ``record_id``; saved atomically on every change.

    ``ResultsStore(path, kind=...)`` opens the store in ``path`` (refused in one line if it is of another kind
    or schema version, or not a store) or, where there is no file yet (or with ``fresh=True``, which
    overwrites), starts an empty one, written on its first change.
    """

    def __init__(self, path: str | Path, *, kind: str, fresh: bool = False) -> None:
        self.path, self.kind = Path(path), kind
        self.records: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        if self.path.is_dir():
            raise ValueError(f"Results store {self.path} is a folder; expected a file path (such as {self.path / 'results.json'}).")
        if fresh or not self.path.exists():
            return
        data = _read(self.path)
        if data["kind"] != kind:
            raise ValueError(f"Results store {self.path} holds {data['kind']!r} records; it cannot be opened as a "
                             f"{kind!r} store.")
        self.runs = list(data["runs"])
        for record in data["records"]:
            if not self._take(record):
                raise ValueError(f"Results store {self.path} is damaged: it holds two records of one configuration "
                                 f"and seed ({record_id(record)}).")

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, item: dict[str, Any] | str) -> bool:
        """Whether a record (or a ``record_id``) is in the store."""
        return (item if isinstance(item, str) else record_id(item)) in self._ids

    def _take(self, record: dict[str, Any]) -> bool:
        rid = record_id(record)
        if rid in self._ids:
            return False
        self._ids.add(rid)
        self.records.append(record)
        return True

    def append(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the records not already in the store (by ``record_id``), save, and return those added."""
        added = [r for r in records if self._take(r)]
        if added:
            self.save()
        return added

    def add(self, record: dict[str, Any]) -> bool:
        """Add one record and save; ``False`` (nothing written) when it is already there."""
        return bool(self.append([record]))

    def start_run(self, provenance: dict[str, Any]) -> str:
        """Record an invocation's provenance as a new ``runs`` entry; return its ``session`` id (which the
        records it writes carry)."""
        session = uuid.uuid4().hex[:8]
        self.runs.append({"session": session, **provenance})
        self.save()
        return session

    def update_run(self, session: str, **fields: Any) -> None:
        """Add ``fields`` (say, the load at the end) to the ``runs`` entry of ``session``, and save."""
        for run in self.runs:
            if run["session"] == session:
                run.update(fields)
        self.save()

    def save(self) -> None:
        """Write the whole store atomically."""
        io.write_json(self.path, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": self.kind,
                                  "runs": self.runs, "records": self.records})


def store_kind(path: str | Path) -> str:
    """The kind of the store in ``path`` (refused in one line when it is no store of this schema version)."""
    return _read(Path(path))["kind"]


def read_store(path: str | Path) -> ResultsStore:
    """The store in ``path`` (a folder: its ``cells.json``), opened as the kind it holds: for a reader (a report,
    the README's numbers) that takes whatever the file is."""
    path = store_path(path)
    return ResultsStore(path, kind=store_kind(path))


def merge_stores(sources: Sequence[str | Path], out: str | Path) -> tuple[ResultsStore, int]:
    """Join stores written by separate processes into ``out`` (new, or an existing store of the same kind, which
    is kept and added to): every source's runs (by session) and records (by ``record_id``) in order. A record
    already there (a configuration and seed run twice) keeps its first copy; the number of such records left
    out comes back beside the store.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> a, b = ResultsStore(os.path.join(folder, "a.json"), kind="runs"), ResultsStore(os.path.join(folder, "b.json"), kind="runs")
        >>> _ = a.append([{"key": "k", "seed": 0}]), b.append([{"key": "k", "seed": 0}, {"key": "k", "seed": 1}])
        >>> merged, left_out = merge_stores([a.path, b.path], os.path.join(folder, "c.json"))
        >>> [r["seed"] for r in merged.records], left_out
        ([0, 1], 1)
    """
    if not sources:
        raise ValueError("Give at least one results store to merge.")
    out = Path(out)
    kinds = {str(s): store_kind(s) for s in sources}
    if len(set(kinds.values())) > 1:
        raise ValueError("The stores to merge hold different kinds of records: "
                         + ", ".join(f"{s} ({k})" for s, k in kinds.items()) + ".")
    kind = next(iter(kinds.values()))
    merged = ResultsStore(out, kind=kind)
    left_out = 0
    for source in sources:
        if Path(source).resolve() == out.resolve():
            continue  # merging a store into itself adds nothing
        theirs = ResultsStore(source, kind=kind)
        sessions = {r["session"] for r in merged.runs}
        merged.runs += [r for r in theirs.runs if r.get("session") not in sessions]
        left_out += sum(not merged._take(r) for r in theirs.records)
    merged.save()
    return merged, left_out
