"""Learning to Weight (Han et al., ECCV 2022) on ``joint``: the weight formula, the exiting-mimicking meta
objective and the meta-gradient through one virtual SGD step, each against a computation written out here."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn.net import LocalNet, Stage
from locallearn.rules import JointSupervision
from locallearn.rules.l2w import L2W, exit_fractions, exiting_selection
from locallearn.testing import check_rule


def _grads(net: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in net.parameters()]


def test_with_epsilon_zero_l2w_is_joint_to_numerical_precision():
    torch.manual_seed(0)
    net = ll.build_mlp((6,), (10, 10, 10), 4)
    twin = copy.deepcopy(net)
    x, y = torch.randn(32, 6), torch.randint(0, 4, (32,))
    step = ll.backward(net, x, y, JointSupervision(weighting=L2W(hidden=16, epsilon=0.0)))
    plain = ll.backward(twin, x, y, "joint")
    assert math.isnan(step.losses[0]) and math.isnan(step.losses[1])  # the coupled sum is the last exit's
    torch.testing.assert_close(step.losses[2], sum(plain.losses))
    for a, b in zip(_grads(net), _grads(twin)):
        torch.testing.assert_close(a, b)


def test_the_weights_are_one_plus_epsilon_times_the_centred_meta_output():
    l2w = L2W(hidden=8, epsilon=0.3)
    losses = torch.rand(6, 3)
    w = l2w.weights(losses)
    m = torch.tanh(l2w.meta_net.layers[2](torch.relu(l2w.meta_net.layers[0](losses))))
    torch.testing.assert_close(w, 1 + 0.3 * (m - m.mean()))


def test_the_meta_objective_takes_samples_as_exiting_would():
    torch.testing.assert_close(exit_fractions(3, 0.75), torch.tensor([0.75, 0.5625, 0.421875], dtype=torch.float64) / 1.734375)
    # exit 0 takes floor(5 * 0.6) = 3 of 5 rows, the most confident; the last exit takes the other two
    z0 = torch.tensor([[5.0, 0], [0, 1], [3, 0], [0, 0.1], [0, 4]])
    z1 = torch.zeros(5, 2)
    rows = exiting_selection([z0, z1], torch.tensor([0.6, 0.4]))
    assert rows[0].tolist() == [0, 4, 2] and sorted(rows[1].tolist()) == [1, 3]


def test_the_meta_gradient_through_one_virtual_sgd_step_matches_a_closed_form_written_out():
    """Two exits, each a linear softmax classifier ``z_k = x A_k``: the gradient of the weighted loss has a
    closed form, ``(1/n) x^T ((softmax(x A_k) - Y) * W[:, k])``, differentiable in the meta-network."""
    g = torch.Generator().manual_seed(0)
    xa, xb = torch.randn(8, 5, generator=g), torch.randn(6, 5, generator=g)
    ya, yb = torch.randint(0, 3, (8,), generator=g), torch.randint(0, 3, (6,), generator=g)
    params = {f"A{k}": torch.randn(5, 3, generator=g).requires_grad_() for k in range(2)}
    l2w = L2W(hidden=7, epsilon=0.5, exit_decay=0.5, virtual_lr=0.3, seed=1)

    def forward(tensors, x):
        return [x @ tensors["A0"], x @ tensors["A1"]]

    meta = l2w.meta_loss(forward, params, xa, ya, xb, yb)
    got = torch.autograd.grad(meta, list(l2w.meta_net.parameters()))

    # by hand
    A = [params["A0"].detach(), params["A1"].detach()]
    losses = torch.stack([F.cross_entropy(xa @ a, ya, reduction="none") for a in A], 1)
    out = l2w.meta_net(losses)
    w = 1 + 0.5 * (out - out.mean())
    onehot = F.one_hot(ya, 3).float()
    virtual = [a - 0.3 * xa.T @ ((torch.softmax(xa @ a, -1) - onehot) * w[:, k : k + 1]) / 8 for k, a in enumerate(A)]
    z = [xb @ a for a in virtual]
    confidence = torch.softmax(z[0].detach(), -1).amax(-1)
    first = confidence.argsort(descending=True)[: math.floor(6 * (0.5 / 0.75))]  # p = (0.5, 0.25) / 0.75
    rest = torch.tensor([i for i in range(6) if i not in first.tolist()])
    by_hand = F.cross_entropy(z[0][first], yb[first]) + F.cross_entropy(z[1][rest], yb[rest])
    torch.testing.assert_close(meta, by_hand)
    want = torch.autograd.grad(by_hand, list(l2w.meta_net.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def _bn_net() -> LocalNet:
    torch.manual_seed(0)
    return LocalNet([
        Stage(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU()), nn.Linear(8, 3)),
        Stage(nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU()), nn.Linear(8, 3)),
    ])


def test_meta_steps_train_the_meta_network_only_and_leave_batchnorm_statistics_alone():
    net, twin = _bn_net(), _bn_net()
    rule = JointSupervision(weighting=L2W(hidden=8, meta_lr=0.01, meta_interval=2))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    ll.backward(net, x, y, rule)
    first = [p.clone() for p in rule.weighting.meta_net.parameters()]
    ll.backward(twin, x, y, "joint")
    for a, b in zip(net.buffers(), twin.buffers()):  # one real forward each: the virtual passes left no trace
        torch.testing.assert_close(a, b)
    ll.backward(net, x, y, rule)  # step 2: no meta step (meta_interval=2)
    assert all(torch.equal(a, b) for a, b in zip(first, rule.weighting.meta_net.parameters()))
    ll.backward(net, x, y, rule)  # step 3: a meta step
    assert any(not torch.equal(a, b) for a, b in zip(first, rule.weighting.meta_net.parameters()))


def test_l2w_passes_the_rule_conformance_check_and_refuses_what_it_cannot_do():
    check_rule(JointSupervision(weighting="l2w"))
    check_rule(JointSupervision(weighting=L2W(hidden=16)), head="conv", conv=True)
    with pytest.raises(ValueError, match="not both"):
        JointSupervision(weights=(1.0, 1.0), weighting="l2w")
    with pytest.raises(ValueError, match="'weighting' parameter of JointSupervision must be one of"):
        JointSupervision(weighting="meta")
    net = ll.build_mlp((6,), (10, 10), 4)
    with pytest.raises(ValueError, match="needs every exit's logits"):
        ll.engine.run_stages(net, JointSupervision(weighting="l2w"), torch.randn(4, 10), torch.randint(0, 4, (4,)), [1])
