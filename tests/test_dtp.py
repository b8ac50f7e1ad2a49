"""Difference target propagation (Lee et al. 2015) against its formulas, written out here."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from locallearn import build_cnn, build_mlp, rules
from locallearn.rules.base import StageOutput


def _net():
    torch.manual_seed(0)
    net = build_mlp((5,), (7, 6, 4), 3)
    rule = rules.create("dtp", eta=0.3, sigma=0.1)
    rule.setup(net)
    return net, rule


def test_targets_follow_the_difference_correction_written_out():
    net, rule = _net()
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    with torch.no_grad():
        h1 = net.stages[0].block(x)
        h2 = net.stages[1].block(h1)
        h3 = net.stages[2].block(h2)
    top = h3.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(net.stages[2].head(top), y, reduction="sum"), top)
    g3, g2 = net.stages[2].aux["dtp"], net.stages[1].aux["dtp"]
    with torch.no_grad():
        h3_hat = h3 - 0.3 * grad  # h_hat_L = h_L - eta dL/dh_L
        h2_hat = h2 + g3(h3_hat) - g3(h3)  # h_hat_{i-1} = h_{i-1} + g_i(h_hat_i) - g_i(h_i)
        h1_hat = h1 + g2(h2_hat) - g2(h2)
    torch.testing.assert_close(rule.target(net.stages[1], h2, y), h2_hat)
    torch.testing.assert_close(rule.target(net.stages[0], h1, y), h1_hat)


def test_stage_losses_are_target_error_and_noisy_reconstruction():
    net, rule = _net()
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    stage = net.stages[1]
    h_in = net.stages[0].block(x).detach()
    h = stage.block(h_in)
    out = StageOutput(index=1, is_last=False, stage=stage, h_in=h_in, h_out=h, logits=stage.head(h), x=x)
    target = rule.target(stage, h, y)
    torch.manual_seed(3)
    got = rule.stage_loss(out, y)
    torch.manual_seed(3)
    noisy = h_in + 0.1 * torch.randn_like(h_in)
    reconstruction = (stage.aux["dtp"](stage.block(noisy)) - noisy).pow(2).sum(1).mean()
    expected = (h - target).pow(2).sum(1).mean() + F.cross_entropy(stage.head(h), y) + reconstruction
    torch.testing.assert_close(got, expected)


def test_inverse_learns_to_invert_its_layer():
    net, rule = _net()
    stage = net.stages[1]
    opt = torch.optim.Adam(stage.aux["dtp"].parameters(), lr=1e-2)
    h_in = net.stages[0].block(torch.randn(256, 5)).detach()
    first = float(rule.inverse_loss(stage, h_in))
    for _ in range(300):
        opt.zero_grad()
        rule.inverse_loss(stage, h_in).backward()
        opt.step()
    assert float(rule.inverse_loss(stage, h_in)) < 0.5 * first
    assert all(p.grad is None for p in stage.block.parameters())  # f_i held fixed


def test_refuses_conv_blocks_and_an_unprepared_net():
    with pytest.raises(ValueError, match="MLP blocks only"):
        rules.create("dtp").setup(build_cnn((1, 4, 4), (4, 4), 3))
    net = build_mlp((5,), (7, 6), 3)
    h = net.stages[0].block(torch.randn(2, 5))
    out = StageOutput(index=0, is_last=False, stage=net.stages[0], h_in=h, h_out=h, logits=net.stages[0].head(h))
    with pytest.raises(RuntimeError, match="run setup"):
        rules.create("dtp").stage_loss(out, torch.tensor([0, 1]))


def test_a_few_steps_lower_the_training_loss():
    torch.manual_seed(0)
    x = torch.randn(256, 5)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    net = build_mlp((5,), (16, 16), 3)
    from locallearn import backward, prepare

    rule = prepare(net, "dtp")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = float(F.cross_entropy(net(x)[-1], y))
    for _ in range(60):
        opt.zero_grad()
        backward(net, x, y, rule)
        opt.step()
    assert float(F.cross_entropy(net(x)[-1], y)) < 0.7 * before
