"""The benchmark harness: exact saved-bytes counting, resume, tables, and a mini-suite end to end."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from torch import nn

from locallearn.bench import SUITES, SavedTensorMeter, Suite, open_store, run_suite, step_memory
from locallearn.bench import runner as bench_runner
from locallearn.bench.memory import memory_rows
from locallearn.bench.tables import fake_cell, markdown_table, summary_rows
from locallearn.tidy import tidy_rows, to_csv
from locallearn.cli import main as cli_main
from locallearn.experiment import RunSpec

TINY = Suite(
    name="tiny",
    description="test grid",
    base=RunSpec(widths=(8, 8), epochs=1, batch_size=64),
    datasets=("synthetic",),
    models={"mlp-2x8": {"model": "mlp"}},
    schedules={"simultaneous": ("e2e", "local"), "sequential": ("local", "e2e")},
    seeds=2,
)


@pytest.mark.parametrize("input_grad", [False, True])
def test_saved_bytes_of_linear_relu_by_hand(input_grad):
    batch, fan_in, fan_out = 5, 3, 7
    layer = nn.Sequential(nn.Linear(fan_in, fan_out), nn.ReLU())
    x = torch.randn(batch, fan_in, requires_grad=input_grad)
    with SavedTensorMeter(exclude=layer.parameters()) as meter:
        loss = layer(x).sum()
    # the Linear saves its input (for the weight gradient), the ReLU its output; the weight, saved only when the
    # input needs a gradient, is a parameter and excluded
    expected = 4 * batch * (fan_in + fan_out)
    assert meter.total == meter.peak == meter.current == expected
    loss.backward()
    assert meter.current == 0 and meter.peak == expected


def test_saved_bytes_counts_a_shared_storage_once_and_parameters_when_asked():
    layer = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(6, 3, requires_grad=True)
    with SavedTensorMeter() as meter:  # nothing excluded: the weights count too
        layer(x).sum()
    # x, relu output (= second Linear's input, one storage), both weights (the first Linear's weight is saved for x's
    # gradient; biases are not saved)
    assert meter.total == 4 * (6 * 3 + 6 * 4 + 4 * 3 + 2 * 4)


def test_local_step_holds_one_stage_while_e2e_holds_all(synthetic):
    spec = RunSpec(data="synthetic", widths=(16, 16, 16, 16), batch_size=32)
    local = step_memory(spec, synthetic)
    e2e = step_memory(RunSpec(**{**spec.__dict__, "rule": "e2e"}), synthetic)
    assert local["saved_bytes_peak"] < local["saved_bytes_total"]  # stages backpropagated one by one
    assert local["saved_bytes_peak"] < 0.5 * e2e["saved_bytes_peak"]


def test_memory_rows_ratio_is_one_for_e2e_and_falls_with_depth_for_local(synthetic):
    rows = memory_rows(synthetic, depths=(1, 2, 4), width=16, batch_size=8, rules_=("e2e", "local"), layers_per_stage=(1,))
    e2e = [r["saved_ratio"] for r in rows if r["rule"] == "e2e"]
    local = [r["saved_ratio"] for r in rows if r["label"] == "local"]
    assert e2e == [1.0, 1.0, 1.0]
    assert local[0] == 1.0 and local[0] > local[1] > local[2]


def test_grid_leaves_out_combinations_a_schedule_refuses():
    cells = TINY.cells()
    combos = {(c.spec.rule, c.spec.schedule) for c in cells}
    assert combos == {("e2e", "simultaneous"), ("local", "simultaneous"), ("local", "sequential")}
    assert [c.spec.seed for c in cells] == [0, 0, 0, 1, 1, 1]  # seed-major: every rule back to back per seed
    assert cells[0].spec.rule == "e2e"


def test_rule_entries_keep_a_part_of_the_grid_with_the_whole_grids_keys():
    whole = {c.key: c for c in TINY.cells()}
    part = TINY.cells(rule_entries=["local"])
    assert {(c.spec.rule, c.spec.schedule) for c in part} == {("local", "simultaneous"), ("local", "sequential")}
    assert all(c.key in whole for c in part)  # a later run of the whole suite resumes from these cells
    with pytest.raises(ValueError, match=r"no rule entry 'predsim'; its entries are: e2e, local"):
        TINY.cells(rule_entries=["predsim"])


def test_bench_rules_option_runs_only_those_cells(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SUITES, "tiny", TINY)
    from locallearn.bench.main import main

    assert main(["tiny", "--seeds", "1", "--rules", "e2e", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "1 cells run, 0 already done" in capsys.readouterr().out
    assert [r["rule"] for r in open_store(tmp_path).records] == ["e2e"]
    assert open_store(tmp_path).runs[-1]["command"].startswith("python -m benchmarks tiny --seeds 1 --rules e2e ")
    with pytest.raises(SystemExit):
        main(["tiny", "--rules", ","])
    assert "give one rule entry or more" in capsys.readouterr().err


def test_resume_skips_finished_cells(tmp_path, monkeypatch):
    calls = []
    real = bench_runner.run_cells
    monkeypatch.setattr(bench_runner, "run_cells", lambda cells, ds, **kw: calls.extend(c.key for c in cells) or real(cells, ds, **kw))
    first = run_suite(TINY, out=tmp_path, seeds=1, progress=False)
    assert first.ran == 3 and len(calls) == 3
    again = run_suite(TINY, out=tmp_path, seeds=1, progress=False)
    assert again.ran == 0 and len(calls) == 3 and len(again) == 3
    store = open_store(tmp_path)  # drop one finished cell: only it runs again
    dropped = store.records.pop()
    store.save()
    third = run_suite(TINY, out=tmp_path, seeds=1, progress=False)
    assert third.ran == 1 and calls[-1] == dropped["key"]
    more = run_suite(TINY, out=tmp_path, seeds=2, progress=False)  # a new seed adds cells, keeps the old ones
    assert more.ran == 3 and len(more) == 6
    assert [r["cells_to_run"] for r in open_store(tmp_path).runs] == [3, 1, 3]
    # one record schema: a cell is compare's record (locallearn.compare.run_record) with its measurements added
    record = more[0]
    assert {"label", "key", "rule_kw", "schedule_kw", "model_label", "test_accuracy", "val_accuracy", "epoch_time_s",
            "stage_epoch_time_s", "total_time_s", "history", "config", "session"} <= set(record)
    assert {"epoch_cpu_s", "saved_bytes_peak", "peak_rss_bytes"} <= set(record) and "version" not in record
    assert {"version", "git", "machine", "load_start", "load_end"} <= set(open_store(tmp_path).runs[0])


def test_tables_and_csv_on_a_fake_grid():
    cells = [fake_cell(rule, seed, exits=3) for seed in (0, 1) for rule in ("e2e", "local")]
    cells.append(fake_cell("local", 0, schedule="sequential", exits=3))
    rows = list(csv.DictReader(io.StringIO(to_csv(tidy_rows(cells)))))
    assert len(rows) == 5 * 3
    local = [r for r in rows if r["rule"] == "local" and r["schedule"] == "simultaneous"]
    assert {float(r["time_ratio_e2e"]) for r in local} == {0.5} and {float(r["saved_ratio_e2e"]) for r in local} == {0.5}
    summary = summary_rows(cells)
    assert [(r["rule"], r["schedule"], r["seeds"]) for r in summary] == [
        ("e2e", "simultaneous", 2), ("local", "simultaneous", 2), ("local", "sequential", 1)]
    last = summary[1]["per_exit"][-1]
    assert last == pytest.approx((0.705, 0.00707107), abs=1e-6)
    table = markdown_table(summary)
    assert "| synthetic | mlp | simultaneous | local | 2 | 1 | 50.5 / 60.5 / 70.5 | 70.50 ± 0.71 |" in table
    assert "| 0.50 ± 0.00 |" in table


def test_mini_suite_end_to_end_through_both_entry_points(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SUITES, "tiny", TINY)
    from locallearn.bench.main import main

    out = tmp_path / "tiny"
    assert main(["tiny", "--seeds", "1", "--out", str(out), "--no-progress"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"cells.json", "results.csv", "results.md", "accuracy_per_exit.png", "accuracy_vs_time.png"} <= names
    report = (out / "results.md").read_text()
    assert "| synthetic | mlp-2x8 | sequential | local |" in report and "python -m benchmarks tiny" in report
    assert "total training time" in report  # sequential against simultaneous
    assert "3 cells run, 0 already done" in capsys.readouterr().out
    (out / "results.md").unlink()
    assert cli_main(["bench", "tiny", "--seeds", "1", "--out", str(out), "--no-progress", "--report-only"]) == 0
    assert "0 cells run, 3 already done" in capsys.readouterr().out and (out / "results.md").is_file()
    assert open_store(out).runs[-1]["command"] == f"python -m benchmarks tiny --seeds 1 --out {out} --threads 1"


def test_report_only_without_finished_cells_is_a_clean_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(SUITES, "tiny", TINY)
    assert cli_main(["bench", "tiny", "--out", str(tmp_path), "--report-only"]) == 2
    assert "No finished cells of suite 'tiny'" in capsys.readouterr().err


def test_unknown_suite_is_a_clean_error(capsys):
    assert cli_main(["bench", "nope"]) == 2
    from locallearn.bench.main import suite_names

    assert f"Unknown suite 'nope'. Known suites: {', '.join(suite_names())}." in capsys.readouterr().err


def test_cells_in_turns_equal_cells_run_alone(synthetic):
    from locallearn.bench.cell import run_cell, run_cells

    cells = TINY.cells(seeds=1, epochs=2)
    together = run_cells(cells, synthetic)
    alone = [run_cell(c, synthetic) for c in cells]
    assert [r["test_accuracy"] for r in together] == [r["test_accuracy"] for r in alone]
    for r in together:
        assert len(r["epoch_cpu_times_s"]) == 2 and r["epoch_cpu_s"] > 0  # one CPU time per epoch of every stage
    sequential = next(r for r in together if r["schedule"] == "sequential")
    assert len(sequential["epoch_times_s"]) == 4  # 2 epochs x 2 stages


@pytest.mark.parametrize("module", ["anchors", "cell", "main", "measure", "memory", "plots", "report", "runner", "suites", "tables"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"locallearn.bench.{module}"))
    assert result.failed == 0 and result.attempted > 0
