"""Difference target propagation (Lee et al. 2015) against its formulas, written out here."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from locallearn import build_cnn, build_mlp, rules
from locallearn.net import LocalNet, Stage
from locallearn.rules.base import StageOutput


def _net():
    torch.manual_seed(0)
    net = build_mlp((5,), (7, 6, 4), 3)
    rule = rules.create("dtp", eta=0.3, sigma=0.1)
    rule.setup(net)
    return net, rule


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_targets_follow_the_difference_correction_written_out(kind):
    net, rule = _net() if kind == "mlp" else _conv_net()
    x = torch.randn(8, 5) if kind == "mlp" else torch.randn(8, 1, 8, 8)
    y = torch.randint(0, 3, (8,))
    with torch.no_grad():
        h1 = net.stages[0].block(x)
        h2 = net.stages[1].block(h1)
        h3 = net.stages[2].block(h2)
    top = h3.clone().requires_grad_(True)
    # the authors' NLL is the batch mean (donghyunlee/dtp util.py): H7_ = H7 - lr0 * grad(mean NLL, H7)
    (grad,) = torch.autograd.grad(F.cross_entropy(net.stages[2].head(top), y), top)
    g3, g2 = net.stages[2].aux["dtp"], net.stages[1].aux["dtp"]
    with torch.no_grad():  # a map's inverse upsamples to the spatial size of the layer below (none for features)
        h3_hat = h3 - 0.3 * grad  # h_hat_L = h_L - eta dL/dh_L
        h2_hat = h2 + g3(h3_hat, h2.shape[2:]) - g3(h3, h2.shape[2:])  # h_hat_{i-1} = h_{i-1} + g_i(h_hat_i) - g_i(h_i)
        h1_hat = h1 + g2(h2_hat, h1.shape[2:]) - g2(h2, h1.shape[2:])
    assert h1_hat.shape == h1.shape
    torch.testing.assert_close(rule.target(net.stages[1], h2, y), h2_hat)
    torch.testing.assert_close(rule.target(net.stages[0], h1, y), h1_hat)


def test_defaults_are_the_authors_and_sum_makes_eta_per_sample():
    rule = rules.create("dtp")
    assert (rule.eta, rule.sigma, rule.reduction) == (0.3277, 0.3598, "mean")  # conti_dtp.py: 0.327736, 0.359830
    net, _ = _net()
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    with torch.no_grad():
        h2 = net.stages[1].block(net.stages[0].block(x))
    mean = rules.create("dtp", eta=0.3, reduction="mean")
    total = rules.create("dtp", eta=0.3 / 8, reduction="sum")  # sum over 8 rows = 8 x the mean
    for r in (mean, total):
        r.setup(net)
    torch.testing.assert_close(mean.target(net.stages[1], h2, y), total.target(net.stages[1], h2, y))
    with pytest.raises(ValueError, match="'reduction' parameter of DifferenceTargetPropagation must be one of 'mean', 'sum'"):
        rules.create("dtp", reduction="max")


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


def test_refuses_other_layers_and_an_unprepared_net():
    norm_net = LocalNet([Stage(nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4)), nn.Linear(4, 3)),
                         Stage(nn.Linear(4, 4), nn.Linear(4, 3))])
    with pytest.raises(ValueError, match="stage 0's block holds a LayerNorm"):
        rules.create("dtp").setup(norm_net)
    to_flat = LocalNet([Stage(nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(nn.Flatten(), nn.Linear(64, 3))),
                        Stage(nn.Sequential(nn.Flatten(), nn.Linear(64, 8)), nn.Linear(8, 3))], input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="stage 1's block turns map features into flat ones"):
        rules.create("dtp").setup(to_flat)
    net = build_mlp((5,), (7, 6), 3)
    h = net.stages[0].block(torch.randn(2, 5))
    out = StageOutput(index=0, is_last=False, stage=net.stages[0], h_in=h, h_out=h, logits=net.stages[0].head(h))
    with pytest.raises(RuntimeError, match="run setup"):
        rules.create("dtp").stage_loss(out, torch.tensor([0, 1]))


def _conv_net():
    torch.manual_seed(0)
    net = build_cnn((1, 8, 8), (3, 5, 4), 3)  # 8x8 -> 4x4 -> 2x2 -> 2x2 (no pooling below 4 pixels)
    rule = rules.create("dtp", eta=0.3, sigma=0.1)
    rule.setup(net)
    return net, rule


def test_conv_inverse_mirrors_the_block_convolution_after_upsampling():
    net, _ = _conv_net()
    g2 = net.stages[1].aux["dtp"]
    conv = net.stages[1].block[0]
    assert isinstance(g2.layer, nn.ConvTranspose2d)
    assert (g2.layer.in_channels, g2.layer.out_channels) == (conv.out_channels, conv.in_channels)
    assert (g2.layer.kernel_size, g2.layer.padding, g2.layer.stride) == (conv.kernel_size, conv.padding, (1, 1))
    assert [type(m) for m in g2.activation] == [nn.ReLU]  # the activation of the layer below
    h = torch.randn(2, 5, 2, 2)
    expected = F.relu(g2.layer(F.interpolate(h, size=(4, 4), mode="nearest")))  # Upsample, then ConvTranspose2d
    torch.testing.assert_close(g2(h, (4, 4)), expected)


def test_target_passes_leave_batchnorm_statistics_alone():
    net, rule = _conv_net()
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 3, (6,))
    h1 = net.stages[0].block(x)
    norms = [m for s in net.stages[1:] for m in s.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in norms]
    rule.target(net.stages[0], h1, y)
    rule.inverse_loss(net.stages[1], h1)
    for m, (mean, var, tracked) in zip(norms, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == tracked and m.momentum == 0.1


def test_a_resnet_stage_gets_a_one_layer_inverse():
    from locallearn import models

    net = models.build("resnet20", (1, 8, 8), 3, stages=4, widths=(4, 4, 8))
    rules.create("dtp").setup(net)
    h = net.stages[0].block(torch.randn(2, 1, 8, 8))
    h2 = net.stages[1].block(h)
    assert net.stages[1].aux["dtp"](h2, h.shape[2:]).shape == h.shape


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_few_steps_lower_the_training_loss(kind):
    from locallearn import backward, prepare

    torch.manual_seed(0)
    if kind == "mlp":
        x = torch.randn(256, 5)
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        net = build_mlp((5,), (16, 16), 3)
    else:
        x = torch.randn(128, 1, 8, 8)
        y = (x[:, 0, :4].mean((1, 2)) > 0).long() + (x[:, 0, 4:].mean((1, 2)) > 0).long()
        net = build_cnn((1, 8, 8), (8, 8), 3)
    rule = prepare(net, "dtp")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = float(F.cross_entropy(net(x)[-1], y))
    for _ in range(60 if kind == "mlp" else 40):
        opt.zero_grad()
        backward(net, x, y, rule)
        opt.step()
    assert float(F.cross_entropy(net(x)[-1], y)) < 0.7 * before
