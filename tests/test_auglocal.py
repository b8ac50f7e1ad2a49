"""AugLocal (Ma et al., ICLR 2024) against the formulas of the paper and the authors' code."""

from __future__ import annotations

import torch
from torch import nn

from locallearn import build_cnn, build_mlp, rules
from locallearn.rules.auglocal import aux_depths, aux_layer_indices


def test_depths_follow_the_pyramid_formula():
    # d_i = max(1, round(d (1 - i c / (L - 2)) + i c / (L - 2))), written out for L = 16, d = 5, c = 0.5
    L, d, c = 16, 5, 0.5
    expected = [max(1, round(d * (1 - i * c / (L - 2)) + i * c / (L - 2))) for i in range(L - 1)]
    assert aux_depths(L, depth=d, pyramid=True, pyramid_coeff=c) == expected
    assert expected[0] == 5 and expected[-1] == 3  # decays from d to d (1 - c) + c
    assert aux_depths(16, depth=5, pyramid=True, pyramid_coeff=1.0)[-1] == 1
    assert aux_depths(5, depth=2, pyramid=False, pyramid_coeff=0.5) == [2, 2, 2, 2]


def test_sampled_layers_are_uniform_over_the_layers_above():
    # every layer above when d >= L - 1 - i; else round(i + (L - i - 1) / d * m), m = 1..d
    assert aux_layer_indices(3, 6, 2) == [4, 5]
    assert aux_layer_indices(0, 16, 3) == [5, 10, 15]
    assert aux_layer_indices(1, 11, 4) == [round(1 + 9 / 4 * m) for m in range(1, 5)] == [3, 6, 8, 10]


def test_setup_builds_fresh_copies_of_the_later_blocks_behind_width_adapters():
    torch.manual_seed(0)
    net = build_cnn((1, 16, 16), (4, 8, 16, 32), 3)
    rules.create("auglocal", depth=2, pyramid=False).setup(net)
    aux0 = net.stages[0].aux["auglocal"]
    convs = [m for m in aux0.layers.modules() if isinstance(m, nn.Conv2d)]
    # stage 0 (4 channels) samples stages round(0 + 3/2) = 2 and 3: a 1x1 adapter 4 -> 8, then 8 -> 16, 16 -> 32
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(4, 8, (1, 1)), (8, 16, (3, 3)), (16, 32, (3, 3))]
    backbone = {id(p) for s in net.stages for n, p in s.named_parameters() if not n.startswith("aux.")}
    assert not backbone & {id(p) for p in aux0.parameters()}
    copied = convs[2].weight
    assert copied.shape == net.stages[3].block[0].weight.shape and not torch.equal(copied, net.stages[3].block[0].weight)
    logits = aux0(torch.randn(2, 4, 8, 8))
    assert logits.shape == (2, 3)
    assert "auglocal" not in net.stages[3].aux


def test_the_classifier_has_batchnorm_only_at_depth_one():
    """networks/auxiliary_nets.py: pool, BatchNorm1d when the aux net has a single sampled layer, linear."""
    net = build_mlp((6,), (8, 8, 8, 8), 3)
    rules.create("auglocal", depth=2, pyramid=True, pyramid_coeff=1.0).setup(net)  # depths 2, 2, 1
    kinds = [[type(m).__name__ for m in net.stages[i].aux["auglocal"].classifier] for i in range(3)]
    assert kinds == [["Flatten", "Linear"], ["Flatten", "Linear"], ["Flatten", "BatchNorm1d", "Linear"]]


def test_stage_loss_is_the_aux_cross_entropy_plus_the_probe():
    torch.manual_seed(0)
    net = build_mlp((6,), (8, 8, 8), 3)
    rule = rules.create("auglocal", depth=1)
    rule.setup(net)
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 0, 1])
    from locallearn.rules.base import StageOutput

    stage = net.stages[0]
    h = stage.block(x)
    out = StageOutput(index=0, is_last=False, stage=stage, h_in=x, h_out=h, logits=stage.head(h), x=x)
    aux = stage.aux["auglocal"]
    expected = nn.functional.cross_entropy(aux.classifier(aux.layers(h)), y) + nn.functional.cross_entropy(stage.head(h), y)
    torch.testing.assert_close(rule.stage_loss(out, y), expected)


def test_a_resnet_cut_into_many_stages_trains_through_its_aux_nets():
    """Copies of residual blocks fed another width (skipped layers) keep their shortcut: a 1x1 adapter."""
    import locallearn as ll
    from locallearn import models

    torch.manual_seed(0)
    net = models.build("resnet20", (3, 16, 16), 4, stages=8)
    rule = ll.prepare(net, "auglocal")
    step = ll.backward(net, torch.randn(2, 3, 16, 16), torch.tensor([0, 3]), rule)
    assert all(v == v for v in step.losses)
