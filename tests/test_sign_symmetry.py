"""Sign-symmetric feedback (uSF, brSF, frSF) checked against exact backprop and the written-out formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from locallearn.feedback import backprop_copy, convert

D64 = torch.float64
MODES = ["usf", "brsf", "frsf"]


def _grads(model: nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    return list(torch.autograd.grad(out, [x, *model.parameters()], g))


def _models():
    torch.manual_seed(0)
    linear = nn.Linear(7, 5).double()
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    return [(linear, torch.randn(6, 7, dtype=D64), torch.randn(6, 5, dtype=D64)),
            (conv, torch.randn(2, 3, 9, 9, dtype=D64), torch.randn(2, 4, 5, 5, dtype=D64))]


@pytest.mark.parametrize("index", [0, 1], ids=["linear", "conv2d"])
def test_frsf_with_magnitude_abs_w_is_exactly_backprop(index):
    """B = |W| * sign(W) = W, so every gradient is backprop's (float64)."""
    layer, x, g = _models()[index]
    reference = _grads(layer, x, g)
    convert(layer, mode="frsf")
    with torch.no_grad():
        layer.magnitude.copy_(layer.weight.abs())
    for got, ref in zip(_grads(layer, x, g), reference):
        torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", [0, 1], ids=["linear", "conv2d"])
def test_only_the_input_gradient_changes(mode, index):
    layer, x, g = _models()[index]
    reference = _grads(layer, x, g)
    convert(layer, mode=mode)
    got = _grads(layer, x, g)
    for a, b in zip(got[1:], reference[1:]):  # weight and bias gradients: exact
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert not torch.allclose(got[0], reference[0], atol=1e-3)
    # the input gradient is the layer's backward through B = M * sign(W), written out
    feedback = layer.feedback
    assert torch.equal(feedback.sign(), layer.weight.detach().sign())
    if index == 0:
        expected = g @ feedback
    else:
        expected = F.conv_transpose2d(g, feedback, stride=2, padding=1, output_padding=0)
    torch.testing.assert_close(got[0], expected, atol=1e-12, rtol=0)


def test_usf_feedback_is_the_sign_times_scale():
    layer = convert(nn.Linear(6, 4), mode="usf", scale=0.5)
    layer(torch.randn(3, 6))
    torch.testing.assert_close(layer.feedback, 0.5 * torch.sign(layer.weight.detach()))


def test_feedback_follows_the_weights_as_they_change():
    torch.manual_seed(3)
    for mode in MODES:
        layer = convert(nn.Linear(6, 4), mode=mode)
        with torch.no_grad():
            layer.weight.neg_()  # every sign flips, as an update could do
        layer(torch.randn(3, 6))
        assert torch.equal(layer.feedback.sign(), layer.weight.detach().sign()), mode


def test_brsf_redraws_magnitudes_every_training_batch_and_frsf_keeps_them():
    torch.manual_seed(4)
    brsf, frsf = convert(nn.Linear(6, 4), mode="brsf"), convert(nn.Linear(6, 4), mode="frsf")
    x = torch.randn(3, 6)
    seen = {"brsf": [], "frsf": []}
    for _ in range(2):
        for name, layer in (("brsf", brsf), ("frsf", frsf)):
            layer(x)
            seen[name].append(layer.feedback.abs().clone())
    assert not torch.equal(*seen["brsf"])
    assert torch.equal(*seen["frsf"])
    bound = 1 / 6 ** 0.5  # |R| with R from the layer's default init, uniform in +-1/sqrt(fan_in)
    assert all(float(m.max()) <= bound for m in seen["brsf"] + seen["frsf"])
    with torch.no_grad():  # evaluation draws nothing
        before = brsf.feedback.clone()
        brsf(x)
    assert torch.equal(brsf.feedback, before)


def test_frsf_magnitudes_are_saved_and_restored():
    torch.manual_seed(5)
    a, b = convert(nn.Linear(6, 4), mode="frsf"), convert(nn.Linear(6, 4), mode="frsf")
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.magnitude, b.magnitude)


def test_backprop_copy_gives_exact_gradients():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x, g = torch.randn(4, 5, dtype=D64), torch.randn(4, 3, dtype=D64)
    reference = _grads(model, x, g)
    convert(model, mode="brsf")
    for a, b in zip(_grads(backprop_copy(model), x, g), reference):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_unknown_mode_lists_the_known_ones():
    with pytest.raises(ValueError, match="'mode' parameter of convert must be one of .*usf.*brsf.*frsf"):
        convert(nn.Linear(2, 2), mode="sign")
