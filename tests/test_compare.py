"""``locallearn compare`` as a grid: entries with options, schedules, refusals, config keys, history, outputs."""

from __future__ import annotations

import csv
import json

import pytest

from locallearn.cli import main
from locallearn.compare import Entry, compare, plan_grid, spec_label, summarise
from locallearn.experiment import RunSpec

BASE = RunSpec(data="synthetic", widths=(8, 8), epochs=1, progress=False)


def fake_record(rule: str, schedule: str, seed: int, exits: list[float], *, epochs: int = 1) -> dict:
    key = {"rule": rule, "rule_kw": {}, "schedule": schedule, "schedule_kw": {}, "model": "mlp", "data": "digits",
           "epochs": epochs}
    return {"label": f"{rule}@{schedule}", "key": key, "rule": rule, "schedule": schedule, "model": "mlp",
            "data": "digits", "epochs": epochs, "seed": seed,
            "test_accuracy": list(exits), "val_accuracy": list(exits),
            "epoch_time_s": 1.0, "stage_epoch_time_s": [None] * len(exits), "history": []}


def test_summarise_keeps_two_schedules_of_one_rule_apart():
    records = [fake_record("local", "simultaneous", s, [0.5, 0.90 + 0.02 * s]) for s in (0, 1)]
    records += [fake_record("local", "sequential", s, [0.6, 0.96]) for s in (0, 1)]
    rows = summarise(records)
    assert [(r["rule"], r["schedule"], r["seeds"]) for r in rows] == [("local", "simultaneous", 2), ("local", "sequential", 2)]
    assert rows[0]["final"] == pytest.approx((0.91, 0.02 / 2**0.5))  # simultaneous alone: 0.90 and 0.92
    assert rows[1]["final"] == pytest.approx((0.96, 0.0))


def test_summarise_never_merges_settings_beyond_rule_and_schedule():
    records = [fake_record("local", "simultaneous", 0, [0.9]), fake_record("local", "simultaneous", 0, [0.8], epochs=5)]
    assert [r["epochs"] for r in summarise(records)] == [1, 5]


def test_entries_parse_options_and_schedules():
    assert Entry.parse("predsim:beta=0.5") == Entry("predsim", {"beta": 0.5})
    assert Entry.parse("ib:variant=kde@decoupled:capacity=8") == Entry("ib", {"variant": "kde"}, "decoupled", {"capacity": 8})
    with pytest.raises(ValueError, match="must be KEY=VALUE"):
        Entry.parse("predsim:beta")


def test_plan_applies_options_per_entry_and_skips_refused_combinations():
    plan = plan_grid(BASE, rules=["local", "predsim:beta=0.5", "e2e", "local@sequential"],
                     schedules=["simultaneous", "sequential"])
    labels = [spec_label(s) for s in plan.specs]
    # local@sequential is named twice (once through the grid's schedules): one configuration
    assert labels == ["local@simultaneous", "local@sequential", "predsim:beta=0.5@simultaneous",
                      "predsim:beta=0.5@sequential", "e2e@simultaneous"]
    assert [n.split(":")[0] for n in plan.skipped] == ["e2e@sequential"]
    assert plan.specs[2].rule_kw == {"beta": 0.5} and plan.specs[0].rule_kw == {}


def test_model_entries_with_sizes_stay_apart_and_commas_inside_values_are_kept():
    from locallearn.compare import split_entries

    assert split_entries("mlp:widths=(8,8),mlp:widths=(16,16)") == ["mlp:widths=(8,8)", "mlp:widths=(16,16)"]
    records = compare(BASE, rules=["local"], models=split_entries("mlp:widths=(8,8),mlp:widths=(16,16)"), seeds=[0])
    rows = summarise(records)
    assert [r["model_label"] for r in rows] == ["mlp 8-8", "mlp 16-16"]


def test_plan_rejects_unknown_names_and_options_before_training():
    with pytest.raises(ValueError, match="has no parameter 'beta'"):
        plan_grid(BASE, rules=["local:beta=0.5"])
    with pytest.raises(ValueError, match="Unknown schedule 'nope'"):
        plan_grid(BASE, rules=["local"], schedules=["nope"])
    with pytest.raises(ValueError, match="Unknown model 'rnn'"):
        plan_grid(BASE, rules=["local"], models=["rnn"])


def test_records_carry_key_history_and_whole_network_epoch_time():
    records = compare(BASE, rules=["local"], schedules=["simultaneous", "sequential"], seeds=[0],
                      models=["mlp:widths=(8,8)"])
    simultaneous, sequential = records
    assert simultaneous["key"]["schedule"] == "simultaneous" and sequential["key"]["schedule"] == "sequential"
    assert [h["epoch"] for h in sequential["history"]] == [1, 2]  # one epoch per stage, numbered from 1
    assert [h["stages_trained"] for h in sequential["history"]] == [[1], [2]]
    times = [h["epoch_time_s"] for h in sequential["history"]]
    assert sequential["epoch_time_s"] == pytest.approx(sum(times))  # whole network: both stages, one epoch each
    assert sequential["stage_epoch_time_s"] == pytest.approx(times)
    assert len(simultaneous["test_accuracy"]) == len(simultaneous["val_accuracy"]) == 2
    assert simultaneous["stage_epoch_time_s"] == [None, None]  # every stage every batch: no per-stage time


def test_cli_grid_writes_records_csv_markdown_and_figures(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["compare", "--data", "synthetic", "--widths", "8,8", "--rules", "local,e2e", "--schedules",
                 "simultaneous,sequential", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipped e2e@sequential" in printed
    records = json.loads(out.read_text())["records"]
    assert [r["label"] for r in records] == ["local@simultaneous", "local@sequential", "e2e@simultaneous"]
    assert all(r["history"] and r["key"]["data"] == "synthetic" for r in records)
    for name in ("r.csv", "r_history.csv", "r.md", "r_accuracy_per_exit.png", "r_accuracy_vs_time.png",
                 "r_learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 3 * 2 and {r["exit"] for r in rows} == {"1", "2"}
    assert "| local@sequential | mlp 8-8 | synthetic |" in (tmp_path / "r.md").read_text()


def test_cli_per_entry_options_and_a_toml_grid(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('rules = ["local", "predsim:beta=0.5"]\nseeds = 1\n')
    out = tmp_path / "g.json"
    code = main(["compare", "--data", "synthetic", "--widths", "8", "--epochs", "1", "--grid", str(grid),
                 "--out", str(out), "--no-progress"])
    assert code == 0
    records = json.loads(out.read_text())["records"]
    assert [r["key"]["rule_kw"] for r in records] == [{}, {"beta": 0.5}]
    assert records[1]["config"]["rule"]["beta"] == 0.5


def test_cli_bad_grid_file_is_a_clean_error(tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text('{"rulez": ["local"]}')
    assert main(["compare", "--data", "synthetic", "--grid", str(grid), "--out", str(tmp_path / "r.json")]) == 2
    assert "must hold a table with some of rules" in capsys.readouterr().err


def test_the_readme_grid_file_example_plans(tmp_path):
    import re

    from locallearn.bench.readme import ROOT
    from locallearn.commands.compare import read_grid

    (block,) = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (tmp_path / "grid.toml").write_text(block)
    grid = read_grid(str(tmp_path / "grid.toml"))
    plan = plan_grid(RunSpec(), rules=grid["rules"], models=grid["models"])
    assert len(plan.specs) == 4 * 2 and not plan.skipped and grid["seeds"] == 3
