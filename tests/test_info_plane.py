"""The information-plane callback and the ``locallearn infoplane`` command."""

from __future__ import annotations

import json
import math

import pytest
import torch

from locallearn import build_mlp, seed_everything
from locallearn.cli import main
from locallearn.info.plane import InformationPlane, plane_point
from locallearn.trainer import TrainConfig, Trainer


def test_callback_records_every_stage_at_the_chosen_epochs(synthetic, tmp_path):
    seed_everything(0)
    net = build_mlp(synthetic.input_shape, (8, 4), synthetic.num_classes, activation="tanh")
    plane = InformationPlane(estimator_kw={"bins": 10, "value_range": (-1, 1)}, epochs=[0, 2], max_samples=200,
                             out_dir=str(tmp_path))
    Trainer(net, synthetic, config=TrainConfig(epochs=2, progress=False), callbacks=[plane]).fit()
    assert [(p["epoch"], p["stage"]) for p in plane.points] == [(0, 1), (0, 2), (2, 1), (2, 2)]  # stages from 1
    # The last point must equal a direct estimate on the same subset with the trained net.
    x, y = synthetic.split("train")
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:200].sort().values
    with torch.no_grad():
        t = net.eval()(x[keep], return_features=True)[1][1]
    direct = plane_point(x[keep].numpy(), t.numpy(), y[keep].numpy(), estimator_kw={"bins": 10, "value_range": (-1, 1)})
    assert (plane.points[-1]["ixt"], plane.points[-1]["ity"]) == pytest.approx(direct, abs=1e-12)
    saved = json.loads((tmp_path / "infoplane.json").read_text())
    assert saved["units"] == "bits" and saved["samples"] == 200 and saved["points"] == plane.points
    assert saved["run"]["rule"]["name"] == "local"
    for p in saved["points"]:  # deterministic layer: 0 <= I(T;Y) <= H(Y) and I(X;T) <= log2 N
        assert 0 <= p["ity"] <= math.log2(synthetic.num_classes) + 1e-9
        assert 0 <= p["ixt"] <= math.log2(200) + 1e-9
    assert (tmp_path / "infoplane.png").stat().st_size > 1000


def test_bad_plane_options_fail_before_training():
    with pytest.raises(ValueError, match="'estimator' parameter of InformationPlane must be one of 'binning', 'kde'"):
        InformationPlane(estimator="ksg")
    with pytest.raises(ValueError, match="'noise_var' parameter of kde_mi"):
        InformationPlane(estimator="kde", estimator_kw={"noise_var": 0})
    with pytest.raises(ValueError, match="'epochs' parameter of InformationPlane must be an int >= 0"):
        InformationPlane(epochs=[-1])


def test_cli_writes_json_png_and_run_record(tmp_path, capsys):
    code = main(["infoplane", "--data", "synthetic", "--widths", "6,4", "--activation", "tanh", "--epochs", "2",
                 "--estimator", "kde", "--every", "2", "--max-samples", "150", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    points = json.loads((tmp_path / "infoplane.json").read_text())["points"]
    assert sorted({p["epoch"] for p in points}) == [0, 2] and {p["stage"] for p in points} == {1, 2}
    assert (tmp_path / "infoplane.png").exists() and (tmp_path / "run.json").exists()
    assert "stage 2: test" in capsys.readouterr().out
