"""CIFAR ResNets (He, Zhang, Ren & Sun, CVPR 2016, section 4.2): ``resnet20/32/56/110``, cut into K local modules.

The network of the paper's CIFAR experiments: a 3x3 convolution with 16 filters, then three
groups of ``n`` basic blocks (two 3x3 convolutions each) with 16, 32 and 64 filters, the
first block of groups 2 and 3 halving the map, global average pooling and a linear classifier;
depth ``6n + 2``. He et al. count 0.27M / 0.46M / 0.85M / 1.7M parameters for depth
20 / 32 / 56 / 110 (their Table 6, option A shortcuts).

``stages=K`` cuts the chain ``[stem, group1 block 0, ..., group3 block n-1]`` into ``K``
local modules. The cut points are those of InfoPro's code (Wang et al., ICLR 2021,
blackfeather-wang/InfoPro-Pytorch, ``networks/configs.py``) for ResNet-32 and ResNet-110,
K = 2, 3, 4, 8, 16: a cut ``(g, i)`` ends a module after block ``i`` of group ``g`` (``(0, 0)``:
after the stem). Other depths and K, which InfoPro does not list, are cut as evenly as the
chain allows (``even_cuts``). Each local module gets ``head`` (default ``"conv"`` with
``grid=1``: average pooling and one linear layer, InfoPro's greedy-supervised ``0c1f``
auxiliary net; ``"dgl"`` and ``"infopro"`` give DGL's and InfoPro's); the last module's head
is the network's own classifier (average pooling and ``Linear(64, classes)``), whatever ``head``.

Kept from InfoPro's code: option B shortcuts (a 1x1 convolution and BatchNorm where the shape
changes; ``shortcut="A"`` gives He et al.'s parameter-free zero-padded identity), convolution
weights drawn from ``N(0, 2 / (k * k * out_channels))``, BatchNorm weight 1 and bias 0.

Example:
    >>> from locallearn import models
    >>> net = models.build("resnet32", (3, 32, 32), 10, stages=4)
    >>> net.num_exits, models.create("resnet32", stages=4).describe()
    (4, 'resnet32 K=4')
    >>> infopro_cuts(32, 2)
    ((2, 1),)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.heads import HeadSpec, make_head
from locallearn.models.base import MODELS, ModelFamily
from locallearn.net import LocalNet, Stage, output_shapes

Cut = tuple[int, int]  # (group, block index in the group); (0, 0) is the stem

# InfoPro's split points (networks/configs.py, ``InfoPro``): a local module ends after each entry.
INFOPRO_CUTS: dict[int, dict[int, tuple[Cut, ...]]] = {
    32: {
        2: ((2, 1),),
        3: ((1, 4), (2, 4)),
        4: ((1, 2), (2, 1), (3, 0)),
        8: ((1, 0), (1, 2), (1, 4), (2, 1), (2, 3), (3, 0), (3, 2)),
        16: ((0, 0), *((1, i) for i in range(5)), *((2, i) for i in range(5)), *((3, i) for i in range(4))),
    },
    110: {
        2: ((2, 8),),
        3: ((1, 17), (2, 17)),
        4: ((1, 11), (2, 7), (3, 3)),
        8: ((1, 4), (1, 11), (2, 0), (2, 7), (2, 14), (3, 3), (3, 10)),
        16: (*((1, i) for i in (1, 4, 7, 10, 13, 16)), *((2, i) for i in (1, 4, 7, 11, 15)), *((3, i) for i in (1, 5, 9, 13))),
    },
}


def _chain(blocks_per_group: int) -> list[Cut]:
    """The units of the network in forward order, each named by ``(group, index)``."""
    return [(0, 0), *((g, i) for g in (1, 2, 3) for i in range(blocks_per_group))]


def even_cuts(depth: int, stages: int) -> tuple[Cut, ...]:
    """``stages - 1`` cut points spreading the ``1 + 3n`` units (stem and blocks) evenly.

    Example:
        >>> even_cuts(20, 2)  # stem + 3 blocks + 1 | 2 + 3 blocks
        ((2, 0),)
    """
    chain = _chain((depth - 2) // 6)
    return tuple(chain[round(len(chain) * k / stages) - 1] for k in range(1, stages))


def infopro_cuts(depth: int, stages: int) -> tuple[Cut, ...]:
    """InfoPro's cut points for ``depth`` and ``stages`` where its code lists them, else ``even_cuts``."""
    return INFOPRO_CUTS.get(depth, {}).get(stages) or even_cuts(depth, stages)


class PadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and append zero channels (no parameters)."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``, the first convolution with ``stride``."""

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            if shortcut == "A":
                self.shortcut = PadShortcut(stride, channels - in_channels)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _stem(in_channels: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())


def _init(module: nn.Module) -> None:
    """InfoPro's (and He et al.'s) initialisation of the backbone."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CifarResNet(ModelFamily):
    """A CIFAR ResNet of depth ``6n + 2`` (set by the registered subclass) in ``stages`` local modules.

    Args:
        stages: the number of local modules K (1: the whole network, trained end to end).
        cuts: explicit cut points ``((group, block), ...)``, in forward order, instead of InfoPro's.
        widths: the filters of the three groups (the stem has ``widths[0]``); He et al.'s (16, 32, 64).
        shortcut: ``"B"`` (1x1 projection, InfoPro's code) or ``"A"`` (zero padding, He et al.'s CIFAR nets).
        head, head_kw: the head of every local module but the last (see the module docstring).
    """

    depth: int
    default_head = "conv"
    tiny_input_shape = (3, 8, 8)

    def __init__(
        self,
        *,
        stages: int = 1,
        cuts: Sequence[Sequence[int]] | None = None,
        widths: Sequence[int] = (16, 32, 64),
        shortcut: str = "B",
        head: str | None = None,
        head_kw: dict[str, Any] | None = None,
    ) -> None:
        owner = type(self).__name__
        self.widths = tuple(widths)
        if len(self.widths) != 3:
            raise ValueError(f"The 'widths' parameter of {owner} must list 3 widths (one per group). Got {widths!r} instead.")
        for width in self.widths:
            check_number(width, name="widths", owner=owner, low=1, integer=True)
        self.shortcut = check_choice(shortcut, name="shortcut", owner=owner, choices=("A", "B"))
        if shortcut == "A" and list(self.widths) != sorted(self.widths):
            raise ValueError(f"{owner} with shortcut='A' needs non-decreasing widths (it pads channels). Got {widths!r}.")
        chain = _chain(self.blocks_per_group)
        self.stages = check_number(stages, name="stages", owner=owner, low=1, high=len(chain), integer=True)
        self.cuts = None if cuts is None else tuple(tuple(c) for c in cuts)
        if self.cuts is not None:
            unknown = [c for c in self.cuts if c not in chain]
            if unknown or len(self.cuts) != self.stages - 1 or self.cuts != tuple(sorted(set(self.cuts), key=chain.index)):
                raise ValueError(
                    f"The 'cuts' parameter of {owner} must list stages - 1 = {self.stages - 1} distinct (group, block) "
                    f"points in forward order, group 0 (the stem, block 0) or 1-3 with blocks 0..{self.blocks_per_group - 1}, "
                    f"and not the last block (3, {self.blocks_per_group - 1}). Got {cuts!r} instead."
                )
        if self.split_points()[-1:] == (chain[-1],):
            raise ValueError(f"{owner} cannot end a local module after its last block: the classifier follows it.")
        self.head = head
        self.head_kw = head_kw

    @property
    def blocks_per_group(self) -> int:
        return (self.depth - 2) // 6

    def split_points(self) -> tuple[Cut, ...]:
        """Where each local module but the last ends: ``cuts`` if given, else InfoPro's."""
        return self.cuts if self.cuts is not None else infopro_cuts(self.depth, self.stages)

    def candidate_cuts(self) -> list[Cut]:
        """Every unit a local module may end after: the stem and each block but the last."""
        return _chain(self.blocks_per_group)[:-1]

    def units(self, in_channels: int) -> list[nn.Module]:
        """The stem and every basic block, in forward order (the cut points index this list)."""
        units: list[nn.Module] = [_stem(in_channels, self.widths[0])]
        channels = self.widths[0]
        for g, width in enumerate(self.widths):
            for i in range(self.blocks_per_group):
                stride = 2 if g > 0 and i == 0 else 1
                units.append(BasicBlock(channels, width, stride, self.shortcut))
                channels = width
        return units

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        check_number(num_classes, name="num_classes", owner=type(self).__name__, low=2, integer=True)
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} expects a (C, H, W) input shape; got {tuple(input_shape)}.")
        units = self.units(input_shape[0])
        chain = _chain(self.blocks_per_group)
        ends = [chain.index(c) + 1 for c in self.split_points()] + [len(units)]
        blocks = [nn.Sequential(*units[a:b]) for a, b in zip([0, *ends[:-1]], ends)]
        _init(nn.ModuleList(blocks))
        shapes = output_shapes(blocks, input_shape)
        head: HeadSpec = self.head or self.default_head
        head_kw = dict(self.head_kw or {}) if self.head else {"grid": 1, **(self.head_kw or {})}
        stages = [Stage(block, make_head(head, shape, num_classes, **head_kw)) for block, shape in zip(blocks[:-1], shapes)]
        classifier = make_head("conv", shapes[-1], num_classes, grid=1)  # average pooling and Linear(64, classes)
        return LocalNet([*stages, Stage(blocks[-1], classifier)], input_shape=input_shape)

    def num_stages(self) -> int:
        return self.stages

    def describe(self) -> str:
        return f"{self.name} K={self.stages}"

    @classmethod
    def tiny(cls, stages: int) -> CifarResNet:
        return cls(stages=stages, widths=(4, 4, 8))


@MODELS.register("resnet20")
class ResNet20(CifarResNet):
    """He et al.'s CIFAR ResNet-20 (n = 3; 0.27M parameters)."""

    depth = 20


@MODELS.register("resnet32")
class ResNet32(CifarResNet):
    """He et al.'s CIFAR ResNet-32 (n = 5; 0.46M parameters), InfoPro's main network."""

    depth = 32


@MODELS.register("resnet56")
class ResNet56(CifarResNet):
    """He et al.'s CIFAR ResNet-56 (n = 9; 0.85M parameters)."""

    depth = 56


@MODELS.register("resnet110")
class ResNet110(CifarResNet):
    """He et al.'s CIFAR ResNet-110 (n = 18; 1.7M parameters)."""

    depth = 110
