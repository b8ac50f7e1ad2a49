"""The field's architectures: He et al.'s CIFAR ResNets (parameter counts, InfoPro's split points)
and the local-loss VGGs (the authors' layer lists). Parameters are counted on the layers alone,
without a forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from locallearn import models
from locallearn.heads import make_head
from locallearn.models.resnet import BasicBlock, PadShortcut


def _count(modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# He et al. 2016, Table 6 (CIFAR-10): parameters of ResNet-20 / 32 / 56 / 110
HE_PARAMS = {20: 0.27e6, 32: 0.46e6, 56: 0.85e6, 110: 1.7e6}


@pytest.mark.parametrize("shortcut", ["A", "B"])
@pytest.mark.parametrize("depth", sorted(HE_PARAMS))
def test_resnet_parameter_counts_match_he_et_al(depth, shortcut):
    family = models.create(f"resnet{depth}", shortcut=shortcut)
    units = family.units(3)
    assert len(units) == 1 + 3 * (depth - 2) // 6
    # the network: its units and the classifier Linear(64, 10) (K = 1: no other head)
    total = _count(units) + 64 * 10 + 10
    assert abs(total - HE_PARAMS[depth]) / HE_PARAMS[depth] < 0.02, total


def test_option_a_shortcut_has_no_parameters_and_pads_zeros():
    block = BasicBlock(16, 32, 2, "A")
    assert isinstance(block.shortcut, PadShortcut) and not list(block.shortcut.parameters())
    x = torch.randn(2, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2]) and not out[:, 16:].any()
    assert isinstance(BasicBlock(16, 32, 2, "B").shortcut[0], nn.Conv2d)


# InfoPro's split points for ResNet-32 and ResNet-110 (blackfeather-wang/InfoPro-Pytorch,
# "Experiments on CIFAR-SVHN-STL10/networks/configs.py"), written out: [group, block] after which
# a local module ends; group 0 is the stem.
INFOPRO_RESNET32 = {
    2: [[2, 1]],
    4: [[1, 2], [2, 1], [3, 0]],
    8: [[1, 0], [1, 2], [1, 4], [2, 1], [2, 3], [3, 0], [3, 2]],
    16: [[0, 0], [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [2, 0], [2, 1], [2, 2], [2, 3], [2, 4], [3, 0], [3, 1], [3, 2], [3, 3]],
}
INFOPRO_RESNET110 = {
    2: [[2, 8]],
    4: [[1, 11], [2, 7], [3, 3]],
    8: [[1, 4], [1, 11], [2, 0], [2, 7], [2, 14], [3, 3], [3, 10]],
    16: [[1, 1], [1, 4], [1, 7], [1, 10], [1, 13], [1, 16], [2, 1], [2, 4], [2, 7], [2, 11], [2, 15], [3, 1], [3, 5], [3, 9], [3, 13]],
}


@pytest.mark.parametrize("depth, table", [(32, INFOPRO_RESNET32), (110, INFOPRO_RESNET110)])
def test_resnet_split_points_are_infopros(depth, table):
    for k, points in table.items():
        assert [list(p) for p in models.create(f"resnet{depth}", stages=k).split_points()] == points


@pytest.mark.parametrize("k", sorted(INFOPRO_RESNET32))
def test_resnet32_stages_end_where_infopro_cuts(k):
    """The built net's stages end at those points: after a cut (g, i) the next stage opens with the
    unit that follows it in the chain [stem, group 1 blocks, group 2 blocks, group 3 blocks]."""
    family = models.create("resnet32", stages=k, widths=(4, 4, 8))
    net = family.build((3, 8, 8), 10)
    chain = [(0, 0), *((g, i) for g in (1, 2, 3) for i in range(5))]
    sizes = [len(stage.block) for stage in net.stages]
    assert sum(sizes) == len(chain) and net.num_exits == k
    ends = [chain[sum(sizes[: j + 1]) - 1] for j in range(k - 1)]
    assert [list(e) for e in ends] == INFOPRO_RESNET32[k]
    # the last stage's head is the classifier: average pooling and Linear(widths[-1], classes)
    assert net.stages[-1].head.grid == 1 and net.stages[-1].head.linear.in_features == 8


def test_resnet_other_depths_split_evenly_and_explicit_cuts_are_checked():
    assert models.create("resnet20", stages=2).split_points() == ((2, 0),)  # 5 + 5 of its 10 units
    assert models.create("resnet20", stages=4, cuts=[(1, 0), (2, 0), (3, 0)]).split_points() == ((1, 0), (2, 0), (3, 0))
    with pytest.raises(ValueError, match="'cuts' parameter of ResNet20 must list stages - 1 = 2"):
        models.create("resnet20", stages=3, cuts=[(1, 0)])
    with pytest.raises(ValueError, match="forward order"):
        models.create("resnet20", stages=3, cuts=[(2, 0), (1, 0)])
    with pytest.raises(ValueError, match="'stages' parameter of ResNet20 must be an int >= 1 and <= 10"):
        models.create("resnet20", stages=11)


def test_resnet_local_heads_follow_the_head_option():
    net = models.build("resnet32", (3, 8, 8), 10, stages=2, widths=(4, 4, 8), head="dgl")
    assert type(net.stages[0].head).__name__ == "DGLHead"
    assert type(net.stages[1].head).__name__ == "ConvHead"  # the network's own classifier
    net = models.build("resnet32", (3, 8, 8), 10, stages=2, widths=(4, 4, 8), head="infopro")
    assert type(net.stages[0].head).__name__ == "InfoProHead"


def test_infopro_head_is_the_authors_1c2f():
    """16 -> Conv(32, stride 2), 32 -> Conv(64, stride 2), 64 -> Conv(64, stride 1); then 128 hidden units."""
    for channels, out, stride in ((16, 32, 2), (32, 64, 2), (64, 64, 1)):
        head = make_head("infopro", (channels, 8, 8), 10)
        conv, linear1, linear2 = head.layers[0], head.layers[5], head.layers[7]
        assert (conv.in_channels, conv.out_channels, conv.stride, conv.kernel_size) == (channels, out, (stride, stride), (3, 3))
        assert (linear1.in_features, linear1.out_features, linear2.out_features) == (out, 128, 10)


# anokland/local-loss train.py, cfg
LOCAL_LOSS_CFG = {
    "vgg8b": [128, 256, "M", 256, 512, "M", 512, "M", 512, "M"],
    "vgg11b": [128, 128, 128, 256, "M", 256, 512, "M", 512, 512, "M", 512, "M"],
}


@pytest.mark.parametrize("name", sorted(LOCAL_LOSS_CFG))
def test_vgg_layers_are_the_authors(name):
    family = models.create(name, width=0.125, hidden=16)  # narrow: the layer list is what is checked
    net = family.build((3, 32, 32), 10)
    convs = [m for s in net.stages for m in s.block if isinstance(m, nn.Conv2d)]
    widths = [layer for layer in LOCAL_LOSS_CFG[name] if layer != "M"]
    assert [c.out_channels for c in convs] == [int(w * 0.125) for w in widths]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert net.num_exits == family.num_stages() == len(widths) + 1
    # the pooling after a convolution opens the next stage, so each local head reads a conv output before pooling
    pools_after_each_conv: list[int] = []
    for layer in LOCAL_LOSS_CFG[name]:
        if layer == "M":
            pools_after_each_conv[-1] += 1
        else:
            pools_after_each_conv.append(0)
    assert [sum(isinstance(m, nn.MaxPool2d) for m in s.block) for s in net.stages[1:]] == pools_after_each_conv
    hidden = net.stages[-1].block
    assert [type(m) for m in hidden if not isinstance(m, nn.MaxPool2d)] == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert net.stages[-1].head.in_features == 16


def test_vgg_on_stl10_sized_input_opens_with_a_7x7_stride_2_convolution():
    net = models.build("vgg8b", (3, 96, 96), 10, width=0.125, hidden=16)
    first = net.stages[0].block[0]
    assert (first.kernel_size, first.stride) == ((7, 7), (2, 2))
