"""The results store (locallearn.store): records keyed by configuration key and seed, atomic 0644 writes, a schema
version and a kind in the file, resumable appends, one-line refusals, and merging stores of separate processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from locallearn import io
from locallearn.store import SCHEMA, SCHEMA_VERSION, ResultsStore, merge_stores, record_id

REPO = Path(__file__).resolve().parents[1]


def _record(rule: str, seed: int, accuracy: float = 0.5) -> dict:
    return {"key": {"rule": rule, "lr": 0.1}, "seed": seed, "test_accuracy": [accuracy]}


def test_append_round_trips_and_skips_what_is_there(tmp_path):
    path = tmp_path / "r.json"
    store = ResultsStore(path, kind="runs")
    assert not path.exists()  # nothing written before the first record
    added = store.append([_record("local", 0), _record("local", 1), _record("e2e", 0)])
    assert [(r["key"]["rule"], r["seed"]) for r in added] == [("local", 0), ("local", 1), ("e2e", 0)]
    again = ResultsStore(path, kind="runs")
    assert again.records == added
    # the same configuration and seed is skipped even with another result; the key's order of fields does not matter
    assert again.append([_record("local", 1, accuracy=0.9), {"seed": 0, "key": {"lr": 0.1, "rule": "e2e"}}]) == []
    assert again.add(_record("local", 2)) and not again.add(_record("local", 2))
    on_disk = io.read_json(path)
    assert (on_disk["schema"], on_disk["schema_version"], on_disk["kind"]) == (SCHEMA, SCHEMA_VERSION, "runs")
    assert [(r["key"]["rule"], r["seed"], r["test_accuracy"]) for r in on_disk["records"]] == [
        ("local", 0, [0.5]), ("local", 1, [0.5]), ("e2e", 0, [0.5]), ("local", 2, [0.5])]
    assert _record("local", 0) in again and record_id(_record("local", 3)) not in again


def test_writes_are_atomic_and_0644(tmp_path):
    old = os.umask(0o022)
    try:
        store = ResultsStore(tmp_path / "r.json", kind="runs")
        store.add(_record("local", 0))
        session = store.start_run({"command": "x"})
        store.update_run(session, load_end=[1.0, 1.0, 1.0])
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left beside it
    assert io.read_json(tmp_path / "r.json")["runs"] == [{"session": session, "command": "x", "load_end": [1.0, 1.0, 1.0]}]


@pytest.mark.parametrize("content, message", [
    ({"schema": SCHEMA, "schema_version": 1, "kind": "runs", "runs": [], "records": []},
     "has schema version 1; this version of locallearn reads version 2 only."),  # version 1: compare's `exits` lists
    ({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "program:cuts", "runs": [], "records": []},
     "holds 'program:cuts' records; it cannot be opened as a 'runs' store."),
    ([{"key": "k", "seed": 0}], "is a plain list of records, written before the results store"),
    ({"records": []}, 'is not a locallearn results store (no "schema": "locallearn-results" in it).'),
    ({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "runs", "runs": [], "records": [{"key": 1, "seed": 0}] * 2},
     "is damaged: it holds two records of one configuration and seed"),
])
def test_another_version_or_kind_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError) as error:
        ResultsStore(path, kind="runs")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert json.loads(path.read_text()) == content  # a refused file is left as it was


def test_not_json_and_fresh_overwrite(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{half")
    with pytest.raises(ValueError, match=r"is not valid JSON"):
        ResultsStore(path, kind="runs")
    store = ResultsStore(path, kind="runs", fresh=True)  # --force: start again
    store.add(_record("local", 0))
    assert len(ResultsStore(path, kind="runs")) == 1


_WRITER = textwrap.dedent("""
    import sys
    from locallearn.store import ResultsStore
    path, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
    store = ResultsStore(path, kind="runs")
    session = store.start_run({"command": "writer " + " ".join(sys.argv[2:])})
    for seed in seeds:
        store.add({"key": {"rule": "local"}, "seed": seed, "session": session, "test_accuracy": [seed / 10]})
""")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_merge_joins_stores_written_by_separate_processes(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / name / "cells.json"), *seeds],
                                env={**os.environ, "PYTHONPATH": str(REPO)})
               for name, seeds in (("a", ["0", "1"]), ("b", ["1", "2"]))]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    done = _run("-m", "benchmarks", "merge", "a", "b", "--out", "c", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 records of 2 runs" in done.stdout and "1 records already there left out" in done.stdout
    merged = ResultsStore(tmp_path / "c" / "cells.json", kind="runs")
    a_session, b_session = (io.read_json(tmp_path / n / "cells.json")["runs"][0]["session"] for n in ("a", "b"))
    assert [r["session"] for r in merged.runs] == [a_session, b_session]
    # seed 1 ran in both: the first store's copy is kept
    assert [(r["seed"], r["session"]) for r in merged.records] == [(0, a_session), (1, a_session), (2, b_session)]
    # merging again into the joined store adds nothing; the same command through `locallearn merge`
    again = _run("-m", "locallearn.cli", "merge", "a", "b", "--out", "c/cells.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "3 records of 2 runs" in again.stdout and len(ResultsStore(tmp_path / "c" / "cells.json", kind="runs")) == 3


def test_merge_refuses_stores_of_two_kinds(tmp_path):
    ResultsStore(tmp_path / "a.json", kind="runs").add(_record("local", 0))
    ResultsStore(tmp_path / "b.json", kind="program:cuts").add(_record("local", 0))
    with pytest.raises(ValueError, match=r"hold different kinds of records: .*a.json \(runs\), .*b.json \(program:cuts\)"):
        merge_stores([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()
    done = _run("-m", "locallearn.cli", "merge", "a.json", "b.json", "--out", "c.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "different kinds" in done.stderr


def test_the_one_off_conversion_of_plain_lists(tmp_path):
    from benchmarks.convert_stores import convert

    suite = tmp_path / "suite"
    suite.mkdir()
    key = json.dumps({"compile": False, "head_kw": {}, "model_kw": {}, "rule": "local", "rule_kw": {"beta": 0.5}, "seed": 0})
    (suite / "cells.json").write_text(json.dumps([{"key": key, "seed": 0, "session": "s1", "version": "0.1.0",
                                                   "test_accuracy": [0.7]}]))
    (suite / "runs.json").write_text(json.dumps([{"session": "s1", "command": "python -m benchmarks suite"}]))
    compared = tmp_path / "r.json"
    compared.write_text(json.dumps([{"key": {"rule": "e2e", "rule_kw": {}, "schedule_kw": {}}, "seed": 1, "version": "0.1.0",
                                     "machine": {"cpu_count": 2},
                                     "exits": [{"exit": 1, "test_accuracy": 0.6, "val_accuracy": 0.5},
                                               {"exit": 2, "test_accuracy": 0.8, "val_accuracy": 0.9}]}]))
    (tmp_path / "r.md").write_text("# Comparison\n\nCommand: `locallearn compare --out r.json`\n")
    assert convert(suite / "cells.json") and convert(compared)
    assert not convert(suite / "cells.json")  # a store already: left alone
    store = ResultsStore(suite / "cells.json", kind="runs")
    assert not (suite / "runs.json").exists()
    assert store.runs == [{"session": "s1", "command": "python -m benchmarks suite", "version": "0.1.0"}]
    assert store.records == [{"key": key, "seed": 0, "session": "s1", "test_accuracy": [0.7], "rule_kw": {"beta": 0.5},
                              "schedule_kw": {}}]
    (record,) = ResultsStore(compared, kind="runs").records
    assert (record["test_accuracy"], record["val_accuracy"], "exits" in record) == ([0.6, 0.8], [0.5, 0.9], False)
    (run,) = ResultsStore(compared, kind="runs").runs
    assert (run["command"], run["machine"], record["session"]) == ("locallearn compare --out r.json", {"cpu_count": 2}, run["session"])


def test_the_conversion_gives_old_suite_keys_the_fields_added_since(tmp_path):
    from benchmarks.convert_stores import convert
    from locallearn.bench.suites import Cell
    from locallearn.experiment import RunSpec

    cell = Cell("mlp-8", RunSpec(data="synthetic", widths=(8,), epochs=1))
    old = json.loads(cell.key)
    for name in ("compile", "model_kw", "head_kw"):
        del old[name]
    old["head"] = "linear"  # the default of the time: an MLP's linear head, which is today's head=None
    store = ResultsStore(tmp_path / "cells.json", kind="runs")
    store.add({"key": json.dumps(old, sort_keys=True), "seed": 0})
    assert convert(tmp_path / "cells.json") and not convert(tmp_path / "cells.json")
    assert [r["key"] for r in ResultsStore(tmp_path / "cells.json", kind="runs").records] == [cell.key]
