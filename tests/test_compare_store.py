"""``compare --out`` is a results store (locallearn.store): a second comparison adds to it, runs already there are not
run again, an incompatible file is refused in one line, ``--force`` starts afresh; ``compare()`` names what it
left out."""

from __future__ import annotations

import csv
import json

import pytest

from locallearn import compare as compare_module
from locallearn.cli import main
from locallearn.compare import compare
from locallearn.experiment import RunSpec
from locallearn.store import SCHEMA_VERSION, ResultsStore

SMALL = ["compare", "--data", "synthetic", "--widths", "8", "--epochs", "1", "--no-progress"]


@pytest.fixture
def runs(monkeypatch):
    """The (rule, seed) of every training run, in order: the run function counted, not timed."""
    real, calls = compare_module.run, []

    def counted(spec, ds, *rest):
        calls.append((spec.rule, spec.seed))
        return real(spec, ds, *rest)

    monkeypatch.setattr(compare_module, "run", counted)
    return calls


def test_a_second_comparison_with_another_rule_adds_to_the_store_and_reruns_nothing(tmp_path, runs, capsys):
    out = tmp_path / "r.json"
    assert main([*SMALL, "--rules", "local", "--seeds", "2", "--out", str(out)]) == 0
    assert runs == [("local", 0), ("local", 1)]
    first = ResultsStore(out, kind="runs").records
    assert main([*SMALL, "--rules", "local,e2e", "--seeds", "2", "--out", str(out)]) == 0
    assert runs[2:] == [("e2e", 0), ("e2e", 1)]  # local's two runs were in the store: not run again
    assert "2 runs done now, 2 already in" in capsys.readouterr().out
    store = ResultsStore(out, kind="runs")
    assert [(r["rule"], r["seed"]) for r in store.records] == [("local", 0), ("local", 1), ("e2e", 0), ("e2e", 1)]
    assert store.records[:2] == first  # the finished records are kept as they were
    sessions = [r["session"] for r in store.runs]
    assert len(sessions) == 2 and [r["session"] for r in store.records] == [sessions[0]] * 2 + [sessions[1]] * 2
    assert [r["command"].split("--rules ")[1].split()[0] for r in store.runs] == ["local", "local,e2e"]
    assert all({"version", "git", "machine", "load_start", "load_end"} <= set(r) for r in store.runs)
    # the outputs beside the store report every record in it, both rules
    with open(tmp_path / "r.csv") as f:
        assert {(row["rule"], row["seed"]) for row in csv.DictReader(f)} == {("local", "0"), ("local", "1"), ("e2e", "0"), ("e2e", "1")}
    assert "| local@simultaneous |" in (tmp_path / "r.md").read_text() and "| e2e@simultaneous |" in (tmp_path / "r.md").read_text()
    # the same grid again: nothing to run, nothing added
    assert main([*SMALL, "--rules", "e2e,local", "--seeds", "2", "--out", str(out)]) == 0
    assert len(runs) == 4 and len(ResultsStore(out, kind="runs").runs) == 2


def test_force_starts_the_store_afresh(tmp_path, runs):
    out = tmp_path / "r.json"
    assert main([*SMALL, "--rules", "local", "--seeds", "1", "--out", str(out)]) == 0
    assert main([*SMALL, "--rules", "e2e", "--seeds", "1", "--out", str(out), "--force"]) == 0
    assert [r["rule"] for r in ResultsStore(out, kind="runs").records] == ["e2e"]
    assert main([*SMALL, "--rules", "e2e", "--seeds", "1", "--out", str(out), "--force"]) == 0
    assert runs == [("local", 0), ("e2e", 0), ("e2e", 0)]  # --force runs again what was there


@pytest.mark.parametrize("content, message", [
    ([{"label": "local@simultaneous", "seed": 0}], "is a plain list of records, written before the results store"),
    ({"schema": "locallearn-results", "schema_version": SCHEMA_VERSION, "kind": "program:cuts", "runs": [], "records": []},
     "holds 'program:cuts' records; it cannot be opened as a 'runs' store."),
    ({"schema": "locallearn-results", "schema_version": 99, "kind": "runs", "runs": [], "records": []},
     "has schema version 99"),
])
def test_an_incompatible_out_is_refused_in_one_line_before_any_run(tmp_path, runs, capsys, content, message):
    out = tmp_path / "r.json"
    out.write_text(json.dumps(content))
    assert main([*SMALL, "--rules", "local", "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert runs == [] and json.loads(out.read_text()) == content  # nothing run, the file untouched


def test_compare_in_python_warns_and_lists_refused_combinations_and_resumes_a_store(tmp_path, runs):
    base = RunSpec(data="synthetic", widths=(8,), epochs=1, progress=False)
    with pytest.warns(UserWarning, match=r"compare left out 1 combination\(s\) a schedule refuses: e2e@sequential: "):
        records = compare(base, rules=["local", "e2e"], schedules=["simultaneous", "sequential"], seeds=[0],
                          out=tmp_path / "r.json")
    assert [r["label"] for r in records] == ["local@simultaneous", "local@sequential", "e2e@simultaneous"]
    assert [s.split(":")[0] for s in records.skipped] == ["e2e@sequential"] and records.ran == 3
    again = compare(base, rules=["local"], seeds=[0, 1], out=tmp_path / "r.json")
    assert again.ran == 1 and runs[3:] == [("local", 1)] and again.skipped == []
    assert [(r["label"], r["seed"]) for r in again] == [("local@simultaneous", 0), ("local@simultaneous", 1)]
    assert again[0] == json.loads(json.dumps(records[0], default=str))  # from the store, as it was written
    assert len(ResultsStore(tmp_path / "r.json", kind="runs")) == 4
