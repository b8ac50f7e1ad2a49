"""The ``locallearn`` command: records, errors without tracebacks, resume."""

from __future__ import annotations

import json

import locallearn
from locallearn.cli import main


def test_compare_writes_records_with_the_promised_keys(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["compare", "--data", "synthetic", "--widths", "16,16", "--rules", "local,e2e", "--seeds", "2",
                 "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    records = json.loads(out.read_text())["records"]  # a results store (locallearn.store)
    assert len(records) == 2 * 2  # rules x seeds
    for key in ("label", "key", "rule", "schedule", "data", "seed", "test_accuracy", "val_accuracy", "epoch_time_s",
                "history", "config", "session"):
        assert key in records[0]
    assert len(records[0]["test_accuracy"]) == 2  # one per exit: exit k at index k - 1
    provenance = json.loads(out.read_text())["runs"][0]  # the store's provenance block
    assert provenance["version"] == locallearn.__version__ and provenance["machine"] and "git" in provenance
    table = capsys.readouterr().out
    assert "| local@simultaneous | mlp 16-16 | synthetic | 1 | 2 |" in table
    assert "| e2e@simultaneous | mlp 16-16 | synthetic | 1 | 2 |" in table


def test_unknown_rule_is_a_clean_error(tmp_path, capsys):
    code = main(["compare", "--data", "synthetic", "--rules", "local,nope", "--out", str(tmp_path / "r.json")])
    assert code == 2
    assert "Unknown rule 'nope'. Known rules:" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_train_then_resume_from_checkpoint(tmp_path, capsys):
    ckpt, out = tmp_path / "run.pt", tmp_path / "run.json"
    args = ["train", "--data", "synthetic", "--widths", "8", "--epochs", "2", "--checkpoint", str(ckpt), "--no-progress"]
    assert main(args + ["--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert main(args + ["--resume", "--out", str(out)]) == 0  # already complete: nothing more to train
    again = json.loads(out.read_text())
    assert again["history"] == first["history"]
    assert first["config"]["rule"]["name"] == "local" and "machine" in first and "version" in first
    assert "exit 1: val" in capsys.readouterr().out  # exits numbered from 1, as everywhere


def test_resume_without_checkpoint_is_a_clean_error(capsys):
    assert main(["train", "--data", "synthetic", "--resume"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_train_with_the_pipeline_schedule_from_the_cli(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = main(["train", "--data", "synthetic", "--widths", "16,16", "--schedule", "pipeline", "--workers", "2",
                 "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    assert json.loads(out.read_text())["config"]["schedule"]["workers"] == 2


def test_workers_without_the_pipeline_is_a_clean_error(capsys):
    assert main(["train", "--data", "synthetic", "--workers", "2"]) == 2
    assert "--workers applies to --schedule pipeline only" in capsys.readouterr().err
