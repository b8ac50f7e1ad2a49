"""Adversarial comparison grids (issue 24): bad entries found before the first run, records kept as each run
ends, grid files whose faults are one line naming the file. A new grid key or entry kind gets a row in
``BAD_GRIDS`` / ``BAD_MODELS``.
"""

from __future__ import annotations

import json

import pytest

from locallearn import cli, compare, io
from tests._adversarial import COMPARE, no_training, one_line_error  # noqa: F401

def compare_error(capsys, *options: str, out) -> str:
    """The one line ``locallearn compare`` (a tiny synthetic grid, results to ``out``) prints for ``options``."""
    return one_line_error(capsys, cli.main([*COMPARE, *options, "--out", str(out)]))


BAD_MODELS = {  # a model entry -> what its one line says
    "mlp:widths=16": "The 'widths' parameter of MLP must list one size per stage, such as (16,) or (256, 256). Got 16 instead.",
    "mlp:widths=(1000000000,)": "parameters (",
    "cnn:channels=7": "The 'channels' parameter of CNN must list one size per stage",
}


def test_records_are_written_as_each_run_ends_so_a_later_failure_loses_none(tmp_path, monkeypatch, capsys):
    real, calls = compare.run, []

    def second_fails(spec, ds, *rest):
        calls.append(spec)
        if len(calls) == 2:
            raise ValueError("the second run broke")
        return real(spec, ds, *rest)

    monkeypatch.setattr(compare, "run", second_fails)
    out = tmp_path / "r.json"
    err = compare_error(capsys, "--rules", "local,e2e", out=out)
    assert "the second run broke" in err
    records = io.read_json(out)["records"]
    assert [r["label"] for r in records] == ["local@simultaneous"] and records[0]["test_accuracy"]


BAD_GRIDS = {  # file content -> what the one line says (always naming the file)
    '{"rules": ["local",}': "is not valid JSON: Expecting value",
    '{"seeds": "2"}': "seeds must be a whole number >= 1 (the seeds 0..N-1 are run), such as 3; got '2'",
    '{"seeds": 0}': "seeds must be a whole number >= 1",
    '{"rules": []}': "rules is empty; list at least one entry or leave the key out",
    '{"models": []}': "models is empty",
    '{"colour": 1}': "must hold a table with some of rules, schedules, models, seeds",
}


@pytest.mark.parametrize("option, text", [("--models", e) for e in BAD_MODELS] + [("--grid", t) for t in BAD_GRIDS])
def test_a_bad_model_entry_or_grid_file_is_one_line_before_any_run(option, text, tmp_path, no_training, capsys):
    """A bad model entry after a good one, or a bad grid file (the line names the file): refused, nothing written."""
    out, grid = tmp_path / "r.json", tmp_path / "g.json"
    grid.write_text(text)
    value = f"mlp:widths=(8,),{text}" if option == "--models" else str(grid)
    err = compare_error(capsys, option, value, out=out)
    assert {**BAD_MODELS, **BAD_GRIDS}[text] in err and (option == "--models" or f"Grid file {grid}" in err), err
    assert not out.exists()


def test_a_bad_toml_grid_names_the_file(tmp_path, no_training, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text("rules = [local]\n")
    err = compare_error(capsys, "--grid", str(grid), out=tmp_path / "r.json")
    assert f"Grid file {grid} is not valid TOML" in err


@pytest.mark.slow
def test_a_grid_file_with_a_utf8_byte_order_mark_is_read(tmp_path):
    grid = tmp_path / "g.json"
    grid.write_bytes("\ufeff".encode() + json.dumps({"rules": ["local"], "seeds": 1}).encode())
    assert cli.main([*COMPARE, "--grid", str(grid), "--out", str(tmp_path / "r.json")]) == 0
    assert len(io.read_json(tmp_path / "r.json")["records"]) == 1
