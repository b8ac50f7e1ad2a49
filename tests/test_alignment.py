"""Alignment metrics against closed forms: exact feedback gives 0 degrees, sign feedback its known angle."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import locallearn as ll
from locallearn.alignment import AlignmentMonitor, angle, layer_alignment
from locallearn.feedback import convert


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def _batch():
    torch.manual_seed(1)
    return torch.randn(32, 6, dtype=torch.float64), torch.randint(0, 3, (32,))


def test_angle_closed_forms():
    assert angle(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 90.0
    assert angle(torch.tensor([1.0, 1.0]), torch.tensor([-3.0, -3.0])) == 180.0
    assert angle(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])) == 0.0
    assert math.isclose(angle(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 3 ** 0.5])), 60.0, abs_tol=1e-6)


def test_feedback_equal_to_the_weights_aligns_perfectly():
    model = convert(_mlp(), mode="frsf")
    for layer in (model[0], model[2], model[4]):
        with torch.no_grad():
            layer.magnitude.copy_(layer.weight.abs())  # B = W
    model(_batch()[0])  # one training forward pass sets each layer's B
    for record in layer_alignment(model, *_batch()):
        assert record["update_angle"] == pytest.approx(0.0, abs=1e-5)
        assert record["feedback_angle"] == pytest.approx(0.0, abs=1e-5)
        assert record["norm_ratio"] == pytest.approx(1.0, abs=1e-12)


def test_usf_feedback_angle_and_norm_ratio_are_those_of_sign_w():
    model = convert(_mlp(), mode="usf", scale=0.5)
    model(_batch()[0])
    records = layer_alignment(model, *_batch())
    for record, layer in zip(records, (model[0], model[2], model[4])):
        w = layer.weight.detach()
        # cos(sign W, W) = sum |w| / (sqrt(n) ||W||); ||0.5 sign W|| = 0.5 sqrt(n)
        expected = math.degrees(math.acos(float(w.abs().sum() / (w.numel() ** 0.5 * w.norm()))))
        assert record["feedback_angle"] == pytest.approx(expected, abs=1e-6)
        assert record["norm_ratio"] == pytest.approx(0.5 * w.numel() ** 0.5 / float(w.norm()), rel=1e-9)
    assert records[-1]["update_angle"] == pytest.approx(0.0, abs=1e-5)  # the top layer's update is exact
    assert 0 < records[0]["update_angle"] < 180


def test_fa_update_angle_matches_a_hand_made_fa_gradient():
    model = convert(_mlp(), mode="fa")
    x, y = _batch()
    w1, w2, w3 = (model[k].weight.detach() for k in (0, 2, 4))
    b1, b2, b3 = (model[k].bias.detach() for k in (0, 2, 4))
    h1 = torch.tanh(x @ w1.T + b1)
    h2 = torch.tanh(h1 @ w2.T + b2)
    e = (torch.softmax(h2 @ w3.T + b3, 1) - nn.functional.one_hot(y, 3)) / len(y)  # d loss / d logits
    # backprop sends e down through W_k; FA through B_k
    true_grad = (((e @ w3) * (1 - h2 ** 2)) @ w2 * (1 - h1 ** 2)).T @ x
    fa_grad = (((e @ model[4].feedback) * (1 - h2 ** 2)) @ model[2].feedback * (1 - h1 ** 2)).T @ x
    record = layer_alignment(model, x, y)[0]
    assert record["update_angle"] == pytest.approx(angle(fa_grad, true_grad), abs=1e-6)
    assert record["update_angle"] > 1.0


def test_measuring_changes_neither_the_model_nor_the_random_state():
    model = convert(_mlp(), mode="brsf")
    before = [p.clone() for p in model.parameters()]
    x, y = _batch()
    state = torch.get_rng_state()
    layer_alignment(model, x, y)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.training


def test_monitor_as_a_trainer_callback():
    ds = ll.data.load("digits")
    ll.seed_everything(0)
    net = convert(ll.build_mlp(ds.input_shape, (32, 32), ds.num_classes), mode="fa")
    monitor = AlignmentMonitor(ds.x_val[:64], ds.y_val[:64])
    config = ll.TrainConfig(epochs=2, progress=False)
    trainer = ll.Trainer(net, ds, rule="e2e", config=config, callbacks=[monitor])
    trainer.fit()
    assert sorted({r["step"] for r in monitor.history}) == [0, 1, 2]
    layers = {r["layer"] for r in monitor.history}
    assert "stages.0.block.1" in layers and "stages.1.head.linear" in layers
    last_head = [r for r in monitor.history if r["layer"] == "stages.1.head.linear"]
    assert all(r["update_angle"] == pytest.approx(0.0, abs=1e-3) for r in last_head)


def test_bad_probe_batch_is_a_clear_error():
    with pytest.raises(ValueError, match="one label per input"):
        AlignmentMonitor(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a model with feedback layers"):
        layer_alignment(nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
