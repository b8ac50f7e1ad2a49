"""VGG8b and VGG11b of the local-loss paper (Nøkland & Eidnes, ICML 2019), one local module per layer.

The layer lists are those of the authors' code (anokland/local-loss ``train.py``, ``cfg``):
``vgg8b``: 128, 256, M, 256, 512, M, 512, M, 512, M; ``vgg11b``: 128, 128, 128, 256, M, 256,
512, M, 512, 512, M, 512, M (an int is a ``Conv3x3 -> BatchNorm -> ReLU (-> Dropout)`` layer,
``M`` 2x2 max-pooling), every width times ``width`` (their ``--feat-mult``; the paper's
VGG11b "3x" is ``width=3``), then one hidden ``Linear(1024) -> BatchNorm1d -> ReLU (-> Dropout)``
layer (``--num-layers 1 --num-hidden 1024``) and the output ``Linear``. Inputs wider than 64
pixels (STL-10) get a 7x7 stride-2 first convolution, as theirs.

Each convolution and the hidden linear layer is one local module (stage), as in the paper.
A max-pooling layer opens the next stage, so a stage's head reads its convolution's output
before pooling, where the authors' local losses read it; the last stage's head is the output
layer. Local heads default to ``"conv"`` average-pooled to the largest ``grid x grid`` map of
at most ``dim_in_decoder`` (2048, their CIFAR setting) features, then one linear layer: the
authors' ``pred`` decoder, with adaptive pooling where they pick an average-pooling kernel.
``dropout`` is their ``--dropout`` (``Dropout2d`` after a convolution, ``Dropout`` after the
hidden linear layer); their sim/predsim runs use leaky ReLU: ``activation="leaky-relu"``.

Example:
    >>> from locallearn import models
    >>> net = models.build("vgg8b", (3, 32, 32), 10)
    >>> net.num_exits, models.create("vgg8b", width=3).describe()
    (7, 'vgg8b x3')
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

from torch import nn

from locallearn._params import check_choice, check_number
from locallearn.heads import HeadSpec, make_head
from locallearn.models.base import MODELS, ModelFamily
from locallearn.net import LocalNet, Stage, output_shapes

Layer = Union[int, str]
VGG8B: tuple[Layer, ...] = (128, 256, "M", 256, 512, "M", 512, "M", 512, "M")
VGG11B: tuple[Layer, ...] = (128, 128, 128, 256, "M", 256, 512, "M", 512, 512, "M", 512, "M")
ACTIVATIONS = {"relu": nn.ReLU, "leaky-relu": lambda: nn.LeakyReLU(0.01)}  # the authors' two non-linearities


def decoder_grid(channels: int, size: int, dim_in_decoder: int) -> int:
    """The largest pooled grid (at most ``size``) with ``channels * grid**2 <= dim_in_decoder`` (at least 1).

    Example:
        >>> decoder_grid(128, 32, 2048), decoder_grid(512, 4, 2048)
        (4, 2)
    """
    grid = min(size, math.isqrt(max(dim_in_decoder // channels, 1)))
    return max(grid, 1)


class LocalLossVGG(ModelFamily):
    """A local-loss VGG: ``config`` (ints: conv widths, ``"M"``: max-pooling), scaled by ``width``.

    Args:
        config: the layer list (``None``: the registered network's; ``tiny`` passes its own).
        width: multiplies every convolution's width (the authors' ``--feat-mult``).
        hidden: units of the hidden linear layer (their ``--num-hidden``).
        dropout: their ``--dropout``.
        activation: ``"relu"`` or ``"leaky-relu"`` (slope 0.01).
        dim_in_decoder: the most features a local conv head reads (their ``--dim-in-decoder``).
        head, head_kw: the head of every stage but the last.
    """

    default_config: tuple[Layer, ...] = ()
    default_head = "conv"
    tiny_input_shape = (3, 8, 8)

    def __init__(
        self,
        *,
        config: Sequence[Layer] | None = None,
        width: float = 1,
        hidden: int = 1024,
        dropout: float = 0.0,
        activation: str = "relu",
        dim_in_decoder: int = 2048,
        head: str | None = None,
        head_kw: dict[str, Any] | None = None,
    ) -> None:
        owner = type(self).__name__
        self.config = None if config is None else tuple(config)
        for layer in self.layers:
            if layer != "M":
                check_number(layer, name="config", owner=owner, low=1, integer=True)
        self.width = check_number(width, name="width", owner=owner, low=0.0, low_inclusive=False)
        self.hidden = check_number(hidden, name="hidden", owner=owner, low=1, integer=True)
        self.dropout = check_number(dropout, name="dropout", owner=owner, low=0.0, high=1.0)
        self.activation = check_choice(activation, name="activation", owner=owner, choices=ACTIVATIONS)
        self.dim_in_decoder = check_number(dim_in_decoder, name="dim_in_decoder", owner=owner, low=1, integer=True)
        self.head = head
        self.head_kw = head_kw

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layer list built: ``config``, or the registered network's."""
        return self.default_config if self.config is None else self.config

    def _blocks(self, input_shape: Sequence[int]) -> list[nn.Module]:
        blocks: list[list[nn.Module]] = []
        pending: list[nn.Module] = []  # pooling waiting to open the next stage
        channels = input_shape[0]
        for layer in self.layers:
            if layer == "M":
                pending.append(nn.MaxPool2d(2))
                continue
            out = int(layer * self.width)
            if not blocks and min(input_shape[1:]) > 64:
                conv = nn.Conv2d(channels, out, 7, stride=2, padding=3)
            else:
                conv = nn.Conv2d(channels, out, 3, padding=1)
            block = [*pending, conv, nn.BatchNorm2d(out), ACTIVATIONS[self.activation]()]
            if self.dropout > 0:
                block.append(nn.Dropout2d(self.dropout))
            blocks.append(block)
            pending, channels = [], out
        hidden = [*pending, nn.Flatten()]
        blocks.append(hidden)
        fan_in = math.prod(output_shapes([nn.Sequential(*b) for b in blocks], input_shape)[-1])
        hidden += [nn.Linear(fan_in, self.hidden), nn.BatchNorm1d(self.hidden), ACTIVATIONS[self.activation]()]
        if self.dropout > 0:
            hidden.append(nn.Dropout(self.dropout))
        return [nn.Sequential(*b) for b in blocks]

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        owner = type(self).__name__
        check_number(num_classes, name="num_classes", owner=owner, low=2, integer=True)
        if len(input_shape) != 3:
            raise ValueError(f"{owner} expects a (C, H, W) input shape; got {tuple(input_shape)}.")
        blocks = self._blocks(input_shape)
        shapes = output_shapes(blocks, input_shape)
        head: HeadSpec = self.head or self.default_head
        stages = []
        for block, shape in zip(blocks[:-1], shapes):
            kw = dict(self.head_kw or {})
            if not self.head:
                kw.setdefault("grid", decoder_grid(shape[0], min(shape[1:]), self.dim_in_decoder))
            stages.append(Stage(block, make_head(head, shape, num_classes, **kw)))
        stages.append(Stage(blocks[-1], nn.Linear(self.hidden, num_classes)))
        return LocalNet(stages, input_shape=input_shape)

    def num_stages(self) -> int:
        return sum(layer != "M" for layer in self.layers) + 1

    def describe(self) -> str:
        return self.name + ("" if self.width == 1 else f" x{self.width:g}")

    @classmethod
    def tiny(cls, stages: int) -> LocalLossVGG:
        return cls(config=(4, "M") * (stages - 1), hidden=8)


@MODELS.register("vgg8b")
class VGG8b(LocalLossVGG):
    """VGG8b: six convolutions and one hidden linear layer, seven local modules."""

    default_config = VGG8B


@MODELS.register("vgg11b")
class VGG11b(LocalLossVGG):
    """VGG11b: nine convolutions and one hidden linear layer, ten local modules (the paper's big
    CIFAR-10 result is ``width=3``)."""

    default_config = VGG11B
