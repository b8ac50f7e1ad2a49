"""InfoPro local loss and DGL heads: the paper's formulas written out, and the rule trains."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn import rules
from locallearn.heads import DGLHead, make_head
from locallearn.rules.base import StageOutput
from _digits import digits_accuracy
from locallearn.rules.infopro import InfoPro, supervised_contrastive_loss
from locallearn.testing import check_rule


def _stage_output(net, k, x):
    h = x
    for stage in net.stages[:k]:
        h = stage.block(h)
    h_out = net.stages[k].block(h.detach())
    return StageOutput(index=k, is_last=k == len(net.stages) - 1, stage=net.stages[k], h_in=h, h_out=h_out,
                       logits=net.stages[k].head(h_out), x=x)


def test_the_loss_is_lambda1_bce_reconstruction_plus_lambda2_cross_entropy():
    torch.manual_seed(0)
    net = ll.build_cnn((1, 8, 8), (4, 6, 6), 3)
    rule = InfoPro(lambda1=2.0, lambda2=0.5)
    rule.setup(net)
    x, y = torch.randn(5, 1, 8, 8) * 2 + 1, torch.tensor([0, 1, 2, 0, 1])
    out = _stage_output(net, 1, x)
    decoder = net.stages[1].aux["infopro"].decoder
    up = F.interpolate(out.h_out, size=(8, 8), mode="bilinear", align_corners=True)
    p = torch.sigmoid(decoder.net(up))
    t = (x - x.min()) / (x.max() - x.min())
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    ce = -torch.log_softmax(out.logits, 1)[torch.arange(5), y].mean()
    torch.testing.assert_close(rule.stage_loss(out, y), 2.0 * bce + 0.5 * ce)
    last = _stage_output(net, 2, x)
    torch.testing.assert_close(rule.stage_loss(last, y), F.cross_entropy(last.logits, y))


def test_weights_are_interpolated_from_the_first_to_the_last_local_stage():
    rule = InfoPro(lambda1=5.0, lambda2=0.0, lambda1_end=2.0, lambda2_end=3.0)
    # L = 5 stages: local stages 0..3, ratio k / (L - 2)
    assert [rule.stage_weights(k, 5) for k in range(4)] == [
        pytest.approx((5 - 3 * k / 3, 3 * k / 3)) for k in range(4)
    ]
    assert rule.stage_weights(0, 2) == (5.0, 0.0)  # one local stage: the first stage's weights


def _supcon_terms(z, y, t):
    """Per anchor: -(1/|P(i)|) sum_p log(exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t)); None without a positive."""
    zn = z / z.norm(dim=1, keepdim=True)
    terms = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if y[p] == y[i]]
        if not positives:
            terms.append(None)
            continue
        denominator = sum(math.exp(float(zn[i] @ zn[a]) / t) for a in others)
        terms.append(-sum(float(zn[i] @ zn[p]) / t - math.log(denominator) for p in positives) / len(positives))
    return terms


def test_supervised_contrastive_loss_is_the_authors_supconloss():
    # InfoPro-Pytorch networks/losses.py: loss_i = -(T / base_T) * mean_log_prob_pos_i, an anchor without a
    # positive has mean_log_prob_pos 0 (its mask sum is bumped to 1), and the loss is the mean over ALL anchors
    torch.manual_seed(1)
    z, y, t = torch.randn(7, 5), torch.tensor([0, 1, 0, 2, 1, 0, 3]), 0.5
    terms = _supcon_terms(z, y, t)
    expected = (t / 0.07) * sum(v or 0.0 for v in terms) / len(terms)  # classes 2 and 3: no positive, count as 0
    assert float(supervised_contrastive_loss(z, y, t)) == pytest.approx(expected, rel=1e-6)


def test_supervised_contrastive_positives_only_form_is_the_earlier_one():
    torch.manual_seed(1)
    z, y, t = torch.randn(7, 5), torch.tensor([0, 1, 0, 2, 1, 0, 3]), 0.5
    terms = [v for v in _supcon_terms(z, y, t) if v is not None]
    got = supervised_contrastive_loss(z, y, t, form="positives-only")
    assert float(got) == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_reconstruction_alone_trains_the_block_and_the_exit_still_learns():
    torch.manual_seed(2)
    net = ll.build_cnn((1, 8, 8), (4, 4), 3)
    rule = InfoPro(lambda2=0.0)
    rule.setup(net)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    rule.stage_loss(_stage_output(net, 0, x), y).backward()
    stage = net.stages[0]
    assert stage.block[0].weight.grad.abs().sum() > 0
    assert stage.head.linear.weight.grad.abs().sum() > 0
    assert stage.aux["infopro"].decoder.net[0].weight.grad.abs().sum() > 0


def test_a_step_without_the_network_input_is_a_clear_error():
    net = ll.build_mlp((4,), (8, 8), 3)
    rule = InfoPro()
    rule.setup(net)
    out = _stage_output(net, 0, torch.randn(2, 4))
    out.x = None
    with pytest.raises(RuntimeError, match="reconstructs the network input"):
        rule.stage_loss(out, torch.tensor([0, 1]))


BAD = {  # a bad call -> what its one-line error says
    "supervision='mse'": (lambda: InfoPro(supervision="mse"), "'supervision' parameter of InfoPro must be one of"),
    "lambda1=-1": (lambda: InfoPro(lambda1=-1), "'lambda1' parameter of InfoPro must be a float >= 0"),
    "a flat input to DGLHead": (lambda: DGLHead((16,), 10), "DGLHead expects a \\(C, H, W\\) feature map"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_parameters_get_clear_errors(case):
    call, message = BAD[case]
    pytest.raises(ValueError, call).match(message)


@pytest.mark.parametrize("options", [{}, {"supervision": "contrast"}])
def test_conforms_with_the_dgl_head(options):
    check_rule(rules.create("infopro", **options), head="dgl", conv=True)


@pytest.mark.parametrize("schedule", ["simultaneous", "sequential"])
def test_trains_on_digits(schedule):
    accuracy = digits_accuracy("infopro", widths=(8, 16), epochs=3, schedule=schedule, cnn=True)
    assert accuracy[-1] > 0.6  # chance is 0.1


def test_dgl_head_plain_layout_layers():
    head = make_head("dgl", (8, 6, 6), 10, convs=2, kernel_size=3, mlp_layers=1, layout="plain")
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d",
                     "Flatten", "Linear", "ReLU", "Linear"]
    assert head.layers[0].weight.shape == (8, 8, 3, 3) and head.layers[8].in_features == 8 * 2 * 2
    assert head(torch.zeros(3, 8, 6, 6)).shape == (3, 10)


def test_dgl_head_is_the_authors_auxillary_classifier2_with_1x1_convs():
    # eugenium/DGL auxiliary_nets_study/models.py, cnn=False, mlp_layers=0: pool to ceil(in/4), then n_lin x
    # (1x1 conv, no bias -> BatchNorm2d -> relu), pool to 2x2, BatchNorm2d, flatten, linear
    torch.manual_seed(0)
    head = DGLHead((4, 8, 8), 3, convs=2, kernel_size=1)
    x = torch.randn(5, 4, 8, 8)
    convs = [m for m in head.layers if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in head.layers if isinstance(m, torch.nn.BatchNorm2d)]
    linear = head.layers[-1]

    def bn(t, m):  # training mode: batch statistics, the module's affine parameters
        mean, var = t.mean((0, 2, 3), keepdim=True), t.var((0, 2, 3), unbiased=False, keepdim=True)
        return (t - mean) / torch.sqrt(var + m.eps) * m.weight[None, :, None, None] + m.bias[None, :, None, None]

    out = torch.nn.functional.adaptive_avg_pool2d(x, (2, 2))  # ceil(8 / 4) = 2
    for conv, norm in zip(convs, norms):
        out = torch.relu(bn(torch.einsum("oc,nchw->nohw", conv.weight[:, :, 0, 0], out), norm))
    out = bn(torch.nn.functional.adaptive_avg_pool2d(out, (2, 2)), norms[-1])
    expected = out.flatten(1) @ linear.weight.T + linear.bias
    torch.testing.assert_close(head(x), expected)
    assert len(norms) == 3 and linear.in_features == 4 * 2 * 2


def test_dgl_head_defaults_are_the_authors_cnn_aux_and_mlp_layers_carry_batchnorm():
    kinds = [type(m).__name__ for m in DGLHead((8, 6, 6), 10).layers]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d",
                     "BatchNorm2d", "Flatten", "Linear"]  # 3x3 convs see the full map: no pooling first
    mlp = DGLHead((8, 6, 6), 10, convs=0, mlp_layers=2)  # the authors' "mlp" aux net
    kinds = [type(m).__name__ for m in mlp.layers]
    assert kinds == ["AdaptiveAvgPool2d", "Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d",
                     "ReLU", "Linear"]
    assert mlp.layers[2].out_features == 8 * 2 * 2  # mlp_feat = feature_size * 2 * 2
