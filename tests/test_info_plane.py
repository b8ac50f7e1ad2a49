"""The information-plane callback and the ``locallearn infoplane`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from locallearn import build_mlp, seed_everything
from locallearn.cli import main
from locallearn.info import ESTIMATORS, binning_mi, hsic, kde_mi, ksg_mi, neural_mi
from locallearn.info.plane import InformationPlane, average_planes, plane_point
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
    with pytest.raises(ValueError, match="Unknown estimator 'mine'. Known estimators: binning, hsic, kde, ksg, neural"):
        InformationPlane(estimator="mine")
    with pytest.raises(ValueError, match="'noise_var' parameter of KDEMI"):
        InformationPlane(estimator="kde", estimator_kw={"noise_var": 0})
    with pytest.raises(ValueError, match="The estimator 'ksg' has no parameter 'bins'"):
        InformationPlane(estimators={"binning": {"bins": 4}, "ksg": {"bins": 4}})
    with pytest.raises(ValueError, match="takes estimator= .* or estimators=, not both"):
        InformationPlane(estimator="kde", estimators=["ksg"])
    with pytest.raises(ValueError, match="'epochs' parameter of InformationPlane must be an int >= 0"):
        InformationPlane(epochs=[-1])


#: Options that keep every estimator fast on 120 samples (the neural critic: 30 steps).
FAST = {"binning": {"bins": 8}, "kde": {}, "ksg": {"k": 3}, "hsic": {"sigma": 1.0}, "neural": {"steps": 30, "hidden": 16}}


def test_every_registered_estimator_records_a_plane_several_in_one_run(synthetic):
    """Each point equals the estimator's own function on the same subset (x, t; labels as symbols for binning
    and KDE, one-hot for the others); every registered estimator must have options here."""
    assert set(FAST) == set(ESTIMATORS.names())
    seed_everything(0)
    net = build_mlp(synthetic.input_shape, (6, 4), synthetic.num_classes, activation="tanh")
    plane = InformationPlane(estimators=FAST, epochs=[1], max_samples=120)
    Trainer(net, synthetic, config=TrainConfig(epochs=1, lr=0.01, progress=False), callbacks=[plane]).fit()
    assert [(p["estimator"], p["stage"]) for p in plane.points] == [(e, s) for e in FAST for s in (1, 2)]
    x, y = plane._x.flatten(1).numpy(), plane._y.numpy()
    with torch.no_grad():
        t = net.eval()(plane._x, return_features=True)[1][1].numpy()
    onehot = np.eye(4)[y]
    direct = {
        "binning": (binning_mi(x, t, bins=8, discrete_x=True, base=2), binning_mi(t, y, bins=8, discrete_y=True, base=2)),
        "kde": (kde_mi(x, t, base=2), kde_mi(y, t, base=2)),
        "ksg": (ksg_mi(x, t, base=2), ksg_mi(t, onehot, base=2)),
        "hsic": (hsic(x, t, sigma=1.0), hsic(t, onehot, sigma=1.0)),
        "neural": (neural_mi(x, t, steps=30, hidden=16, base=2), neural_mi(t, onehot, steps=30, hidden=16, base=2)),
    }
    last = {p["estimator"]: (p["ixt"], p["ity"]) for p in plane.points if p["stage"] == 2}
    for name, expected in direct.items():
        assert last[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), name
    saved = plane.to_dict()
    assert saved["units"] == "per estimator" and saved["estimators"]["hsic"]["units"] == "HSIC"
    assert saved["estimators"]["ksg"] == {"options": {"k": 3}, "class": "KSGMI", "units": "bits"}


def test_planes_average_over_seeds():
    def plane(seed, ixt):
        return {"units": "bits", "estimators": {"kde": {}}, "run": {"train": {"seed": seed}},
                "points": [{"estimator": "kde", "epoch": 0, "stage": 1, "ixt": ixt, "ity": 0.25 * ixt}]}

    mean = average_planes([plane(0, 1.0), plane(1, 2.0), plane(2, 6.0)])
    assert mean["seeds"] == [0, 1, 2] and len(mean["per_seed"]) == 3
    (point,) = mean["points"]
    assert point["ixt"] == pytest.approx(3.0) and point["n"] == 3
    assert point["ixt_sd"] == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert average_planes([plane(0, 1.0)])["points"][0]["ixt_sd"] is None  # one seed: no spread
    other = plane(1, 2.0)
    other["points"][0]["epoch"] = 1
    with pytest.raises(ValueError, match="recorded different estimators, epochs or stages"):
        average_planes([plane(0, 1.0), other])


def test_cli_records_several_estimators_over_seeds(tmp_path, capsys):
    code = main(["infoplane", "--data", "synthetic", "--widths", "6,4", "--activation", "tanh", "--epochs", "1",
                 "--estimator", "binning,ksg,hsic", "--estimator-opt", "hsic:sigma=1.0", "--seeds", "2",
                 "--max-samples", "100", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    saved = json.loads((tmp_path / "infoplane.json").read_text())
    assert saved["seeds"] == [0, 1] and set(saved["estimators"]) == {"binning", "ksg", "hsic"}
    assert saved["estimators"]["hsic"]["options"] == {"sigma": 1.0}
    per_seed = [{(p["estimator"], p["epoch"], p["stage"]): p["ixt"] for p in s["points"]} for s in saved["per_seed"]]
    for p in saved["points"]:
        key = (p["estimator"], p["epoch"], p["stage"])
        assert p["n"] == 2 and p["ixt"] == pytest.approx((per_seed[0][key] + per_seed[1][key]) / 2)
    assert (tmp_path / "run_seed0.json").exists() and (tmp_path / "run_seed1.json").exists()
    out = capsys.readouterr().out
    assert "over n = 2 seeds" in out and "hsic: I(X;T)" in out and " +- " in out
    with pytest.raises(SystemExit):
        main(["infoplane", "--estimator-opt", "k=5", "--out", str(tmp_path / "x")])


def test_cli_writes_json_png_and_run_record(tmp_path, capsys):
    code = main(["infoplane", "--data", "synthetic", "--widths", "6,4", "--activation", "tanh", "--epochs", "2",
                 "--estimator", "kde", "--every", "2", "--max-samples", "150", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    points = json.loads((tmp_path / "infoplane.json").read_text())["points"]
    assert sorted({p["epoch"] for p in points}) == [0, 2] and {p["stage"] for p in points} == {1, 2}
    assert (tmp_path / "infoplane.png").exists() and (tmp_path / "run.json").exists()
    assert "stage 2: test" in capsys.readouterr().out
