"""Feedback alignment primitives checked against autograd and against hand-made DFA gradients."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from locallearn.feedback import (
    DFAConv2d,
    DFALinear,
    FAConv2d,
    FALinear,
    convert,
    fa_conv2d,
    fa_linear,
)

D64 = torch.float64


def _grads(fn, *tensors, grad_out):
    out = fn()
    return torch.autograd.grad(out, tensors, grad_out)


# --------------------------------------------------------------------------- functional reference tests


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
def test_fa_linear_with_b_equal_w_is_backprop(shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=D64, requires_grad=True)
    w = torch.randn(4, 7, dtype=D64, requires_grad=True)
    b = torch.randn(4, dtype=D64, requires_grad=True)
    g = torch.randn(*shape[:-1], 4, dtype=D64)
    ref = _grads(lambda: F.linear(x, w, b), x, w, b, grad_out=g)
    got = _grads(lambda: fa_linear(x, w, b, w.detach().clone()), x, w, b, grad_out=g)
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-6, rtol=0)


def test_fa_linear_random_b_changes_only_the_input_gradient():
    torch.manual_seed(1)
    x = torch.randn(6, 5, dtype=D64, requires_grad=True)
    w = torch.randn(3, 5, dtype=D64, requires_grad=True)
    b = torch.randn(3, dtype=D64, requires_grad=True)
    feedback = torch.randn(3, 5, dtype=D64)
    g = torch.randn(6, 3, dtype=D64)
    ref_x, ref_w, ref_b = _grads(lambda: F.linear(x, w, b), x, w, b, grad_out=g)
    got_x, got_w, got_b = _grads(lambda: fa_linear(x, w, b, feedback), x, w, b, grad_out=g)
    torch.testing.assert_close(got_w, ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_b, ref_b, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_x, g @ feedback, atol=1e-6, rtol=0)
    assert not torch.allclose(got_x, ref_x, atol=1e-3)


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=1, groups=1),
    dict(stride=1, padding=2, dilation=2, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2),
]


@pytest.mark.parametrize("conf", CONV_CASES)
def test_fa_conv2d_with_b_equal_w_is_backprop(conf):
    torch.manual_seed(2)
    groups = conf["groups"]
    x = torch.randn(3, 4, 9, 8, dtype=D64, requires_grad=True)
    w = torch.randn(6, 4 // groups, 3, 3, dtype=D64, requires_grad=True)
    b = torch.randn(6, dtype=D64, requires_grad=True)
    out_shape = F.conv2d(x, w, b, **conf).shape
    g = torch.randn(out_shape, dtype=D64)
    ref = _grads(lambda: F.conv2d(x, w, b, **conf), x, w, b, grad_out=g)
    got = _grads(lambda: fa_conv2d(x, w, b, w.detach().clone(), **conf), x, w, b, grad_out=g)
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-6, rtol=0)


@pytest.mark.parametrize("conf", CONV_CASES[1:3])
def test_fa_conv2d_random_b_changes_only_the_input_gradient(conf):
    torch.manual_seed(3)
    x = torch.randn(2, 4, 9, 8, dtype=D64, requires_grad=True)
    w = torch.randn(5, 4, 3, 3, dtype=D64, requires_grad=True)
    feedback = torch.randn(5, 4, 3, 3, dtype=D64)
    g = torch.randn(F.conv2d(x, w, **conf).shape, dtype=D64)
    ref_x, ref_w = _grads(lambda: F.conv2d(x, w, **conf), x, w, grad_out=g)
    got_x, got_w = _grads(lambda: fa_conv2d(x, w, None, feedback, **conf), x, w, grad_out=g)
    (want_x,) = _grads(lambda: F.conv2d(x, feedback, **conf), x, grad_out=g)  # input error through B
    torch.testing.assert_close(got_w, ref_w, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_x, want_x, atol=1e-6, rtol=0)
    assert not torch.allclose(got_x, ref_x, atol=1e-3)


def test_feedback_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"feedback must have the weight's shape \(3, 4\); got \(4, 3\)"):
        fa_linear(torch.randn(2, 4), torch.randn(3, 4), None, torch.randn(4, 3))


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, padding_mode="reflect", dtype=D64),
        lambda: nn.Conv2d(4, 6, 4, padding="same", dtype=D64),
        lambda: nn.Conv2d(4, 6, 3, padding="valid", groups=2, bias=False, dtype=D64),
        lambda: nn.Linear(4 * 8 * 8, 5, dtype=D64),
    ],
)
def test_converted_module_with_b_equal_w_matches_the_original(make):
    torch.manual_seed(4)
    plain = make()
    fa = convert(copy.deepcopy(plain), mode="fa")
    assert isinstance(fa, (FALinear, FAConv2d))
    fa.feedback.copy_(fa.weight.detach())
    x = torch.randn(2, 4, 8, 8, dtype=D64)
    if isinstance(plain, nn.Linear):
        x = x.flatten(1)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = plain(x1), fa(x2)
    torch.testing.assert_close(y2, y1)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-6, rtol=0)
    torch.testing.assert_close(fa.weight.grad, plain.weight.grad, atol=1e-6, rtol=0)


def test_fa_modules_draw_feedback_from_the_weight_init_times_scale():
    torch.manual_seed(5)
    layer = FALinear(100, 50, scale=2.0)
    bound = 2.0 / 100**0.5
    assert layer.feedback.shape == layer.weight.shape
    assert layer.feedback.abs().max() <= bound and layer.feedback.abs().max() > 0.9 * bound
    assert not layer.feedback.requires_grad and "feedback" in layer.state_dict()
    conv = FAConv2d(4, 8, 3, groups=2, scale=0.5)
    assert conv.feedback.abs().max() <= 0.5 / (2 * 9) ** 0.5
    with pytest.raises(ValueError, match="The 'scale' parameter of FALinear must be a float > 0.0. Got -1 instead."):
        FALinear(3, 2, scale=-1)


# --------------------------------------------------------------------------- convert on a foreign model


class ResCNN(nn.Module):
    """A small residual CNN with BatchNorm and a skip connection, built without locallearn."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.stem(x)))
        h = F.relu(h + self.bn2(self.conv(h)))
        h = F.relu(self.down(h))
        return self.fc(h.mean((2, 3)))


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x, torch.tensor(data.target)


def _train(model, x, y, steps=50, lr=0.2, batch=128, seed=0, flat=False):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        xb = x[idx].flatten(1) if flat else x[idx]
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _accuracy(model, x, y, flat=False):
    with torch.no_grad():
        return (model(x.flatten(1) if flat else x).argmax(1) == y).float().mean().item()


def test_convert_foreign_residual_cnn_keeps_parameters_and_learns(digits):
    x, y = digits
    torch.manual_seed(0)
    model = ResCNN()
    params = list(model.parameters())
    opt_before = torch.optim.SGD(model.parameters(), lr=0.1)
    reference = copy.deepcopy(model)
    out = convert(model, mode="fa")
    assert out is model
    assert [type(m) for m in (model.stem, model.conv, model.down, model.fc)] == [FAConv2d] * 3 + [FALinear]
    assert type(model.bn1) is nn.BatchNorm2d
    assert all(p is q for p, q in zip(model.parameters(), params)) and len(list(model.parameters())) == len(params)
    assert all(p is q for p, q in zip(opt_before.param_groups[0]["params"], model.parameters()))
    # the top layer sees the true error; the layers below get FA signals
    F.cross_entropy(model(x[:64]), y[:64]).backward()
    F.cross_entropy(reference(x[:64]), y[:64]).backward()
    torch.testing.assert_close(model.fc.weight.grad, reference.fc.weight.grad)
    assert not torch.allclose(model.stem.weight.grad, reference.stem.weight.grad, atol=1e-4)
    model.zero_grad()
    losses = _train(model, x, y)
    assert sum(losses[-10:]) / 10 < 0.75 * sum(losses[:10]) / 10
    assert _accuracy(model.eval(), x, y) > 0.3


def test_convert_names_unsupported_layers_and_can_keep_them():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(8, 8))

        def forward(self, x):
            return x @ self.gain

    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), Custom(), nn.Sequential(nn.Conv1d(1, 1, 1)))
    with pytest.raises(ValueError) as err:
        convert(model)
    assert str(err.value) == (
        "convert(mode='fa') cannot convert these layers with parameters: '2' (Custom), '3.0' (Conv1d). "
        "Pass unsupported='keep' to leave them as they are (they keep exact backprop)."
    )
    assert type(model[0]) is nn.Linear  # nothing was converted before refusing
    convert(model, unsupported="keep")
    assert type(model[0]) is FALinear and type(model[3][0]) is nn.Conv1d
    with pytest.raises(ValueError, match="Layer '0' is already converted to 'fa'; cannot make it 'dfa'."):
        convert(model, mode="dfa", unsupported="keep")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="bp"), "The 'mode' parameter of convert must be one of 'fa', 'dfa', 'usf', 'brsf', 'frsf'. Got 'bp' instead."),
        (dict(unsupported="skip"), "The 'unsupported' parameter of convert must be one of 'raise', 'keep'. Got 'skip' instead."),
        (dict(scale=0), "The 'scale' parameter of convert must be a float > 0.0. Got 0 instead."),
    ],
)
def test_convert_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        convert(nn.Linear(2, 2), **kwargs)


# --------------------------------------------------------------------------- DFA


def test_dfa_gradients_match_the_hand_made_rule():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    params = list(model.parameters())
    convert(model, mode="dfa", scale=0.7)
    assert all(p is q for p, q in zip(model.parameters(), params))
    x, y = torch.randn(9, 5, dtype=D64), torch.tensor([0, 1, 2] * 3)
    F.cross_entropy(model(x), y).backward()
    w1, w2, w3 = model[0].weight, model[2].weight, model[4].weight
    d2, d3 = model[2].feedback, model[4].feedback
    assert model[0].feedback is None and d2.shape == (3, 7) and d3.shape == (3, 6)
    assert d3.abs().max() <= 0.7 / 3**0.5
    # by hand: DFA (Nokland 2016), delta_k = (e D_{k+1}) * f'(a_k)
    h1 = torch.tanh(x @ w1.T + model[0].bias)
    h2 = torch.tanh(h1 @ w2.T + model[2].bias)
    out = h2 @ w3.T + model[4].bias
    e = (out.softmax(1) - F.one_hot(y, 3)) / len(x)
    delta2 = (e @ d3) * (1 - h2**2)
    delta1 = (e @ d2) * (1 - h1**2)
    torch.testing.assert_close(w3.grad, e.T @ h2, atol=1e-6, rtol=0)
    torch.testing.assert_close(w2.grad, delta2.T @ h1, atol=1e-6, rtol=0)
    torch.testing.assert_close(w1.grad, delta1.T @ x, atol=1e-6, rtol=0)
    torch.testing.assert_close(model[0].bias.grad, delta1.sum(0), atol=1e-6, rtol=0)


def test_dfa_learns_on_digits_with_mlp_and_cnn(digits):
    x, y = digits
    torch.manual_seed(0)
    mlp = convert(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)), mode="dfa")
    losses = _train(mlp, x, y, lr=0.03, flat=True)
    assert sum(losses[-10:]) / 10 < 0.4 * sum(losses[:10]) / 10
    assert _accuracy(mlp, x, y, flat=True) > 0.75
    # DFA learns convolutions poorly (Launay et al. 2019): here only check that every layer gets a signal
    cnn = convert(ResCNN(), mode="dfa", scale=0.1)
    assert type(cnn.conv) is DFAConv2d and type(cnn.fc) is DFALinear
    losses = _train(cnn, x, y, lr=0.1, steps=5)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert cnn.stem.feedback is None and cnn.conv.feedback.shape == (10, 16 * 8 * 8)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnn.parameters())


def test_dfa_refuses_misuse():
    torch.manual_seed(7)
    model = convert(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), mode="dfa")
    with pytest.raises(RuntimeError, match=r"DFALinear must run inside the model given to convert\(\.\.\., mode='dfa'\)"):
        model[2](torch.randn(3, 4, requires_grad=True))
    with torch.no_grad():  # inference needs no output error
        assert model[2](torch.randn(3, 4)).shape == (3, 2)
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    convert(cnn, mode="dfa")
    cnn(torch.randn(3, 1, 6, 6)).sum().backward()
    with pytest.raises(ValueError, match="DFAConv2d: DFA feedback was drawn for inputs of 32 values per sample; got 72"):
        cnn(torch.randn(3, 1, 8, 8))


def test_fa_layer_saves_its_input_only_when_the_weight_is_trained():
    layer = FALinear(64, 8)
    x = torch.randn(16, 64, requires_grad=True)

    def saved_bytes() -> int:
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel() * t.element_size()) or t, lambda t: t):
            layer(x)
        return sum(sizes)

    assert saved_bytes() == x.numel() * 4
    layer.requires_grad_(False)
    assert saved_bytes() == 0
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.feedback.sum(0).expand(16, 64))
