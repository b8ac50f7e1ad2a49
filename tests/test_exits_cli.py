"""`locallearn exits` on a checkpoint written by a real (tiny) training run."""

import json

import pytest

from locallearn.cli import main
from locallearn.experiment import RunSpec, make_trainer



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.pt"
    spec = RunSpec(data="synthetic", model="mlp", widths=(16, 16, 16), rule="joint", epochs=2, progress=False, checkpoint_path=str(path))
    make_trainer(spec).fit()
    return path


def test_exits_command_writes_a_report_calibrated_on_val(checkpoint, tmp_path, capsys):
    assert main(["exits", "--checkpoint", str(checkpoint), "--policy", "max-prob", "--target-drop", "1.0", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["calibrated_on"] == "val" and report["split"] == "test"
    assert report["val_accuracy"] >= report["val_last_exit_accuracy"] - 0.01
    assert report["runner"]["agrees_with_offline"]
    assert sum(report["exit_histogram"]) == report["n_samples"]
    assert {p.name for p in tmp_path.iterdir()} >= {"accuracy_cost.png", "exit_histogram.png", "val_logits.pt", "test_logits.pt"}
    assert "runner agrees with offline policy: True" in capsys.readouterr().out


def test_exits_command_rejects_bad_arguments(checkpoint, tmp_path, capsys):
    assert main(["exits", "--checkpoint", str(checkpoint), "--target-drop", "-1", "--out", str(tmp_path)]) == 2
    assert "--target-drop must be in points between 0 and 100" in capsys.readouterr().err
    assert main(["exits", "--checkpoint", str(checkpoint), "--policy", "psychic", "--out", str(tmp_path)]) == 2
    assert "Unknown exit policy 'psychic'. Known exit policies: avg-pool" in capsys.readouterr().err
    assert main(["exits", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
