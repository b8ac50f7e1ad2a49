"""Ready-made LocalNets: an MLP from layer widths and a small CNN from channel counts.

Example:
    >>> import torch
    >>> net = build_mlp((1, 8, 8), widths=(32, 32), num_classes=10)
    >>> [t.shape for t in net(torch.zeros(5, 1, 8, 8))]
    [torch.Size([5, 10]), torch.Size([5, 10])]
    >>> cnn = build_cnn((1, 28, 28), channels=(8, 16), num_classes=10)
    >>> [t.shape for t in cnn(torch.zeros(5, 1, 28, 28))]
    [torch.Size([5, 10]), torch.Size([5, 10])]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from torch import nn

from locallearn._params import check_choice, check_number
from locallearn.heads import HeadSpec, make_head
from locallearn.net import LocalNet, Stage, output_shapes

ACTIVATIONS = {"relu": nn.ReLU, "leaky-relu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}  # leaky: slope 0.01


def check_sizes(sizes: Any, *, name: str, owner: str) -> Sequence[int]:
    """Layer sizes must be a non-empty list or tuple (one entry per stage), e.g. ``(256, 256)``; returned as given."""
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise ValueError(f"The {name!r} parameter of {owner} must list one size per stage, such as (16,) or (256, 256). "
                         f"Got {sizes!r} instead.")
    return sizes


def _stages(blocks: list[nn.Module], input_shape: Sequence[int], num_classes: int, head: HeadSpec, head_kw: dict) -> LocalNet:
    shapes = output_shapes(blocks, input_shape)
    return LocalNet([Stage(block, make_head(head, shape, num_classes, **head_kw)) for block, shape in zip(blocks, shapes)],
                    input_shape=input_shape)


def build_mlp(
    input_shape: Sequence[int],
    widths: Sequence[int],
    num_classes: int,
    *,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    head: HeadSpec = "linear",
    head_kw: dict[str, Any] | None = None,
) -> LocalNet:
    """One stage per hidden layer: ``Linear (-> BatchNorm1d) -> activation (-> Dropout)``; the first flattens its input.

    ``batch_norm=True`` is the layer order of Nøkland & Eidnes' ``LocalLossBlockLinear``
    (anokland/local-loss ``train.py``: Linear, BatchNorm1d, non-linearity, dropout).
    """
    check_number(num_classes, name="num_classes", owner="build_mlp", low=2, integer=True)
    check_choice(activation, name="activation", owner="build_mlp", choices=ACTIVATIONS)
    check_number(dropout, name="dropout", owner="build_mlp", low=0.0, high=1.0)
    check_sizes(widths, name="widths", owner="build_mlp")
    blocks: list[nn.Module] = []
    fan_in = math.prod(input_shape)
    for i, width in enumerate(widths):
        check_number(width, name="widths", owner="build_mlp", low=1, integer=True)
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers.append(nn.Linear(fan_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        fan_in = width
    return _stages(blocks, input_shape, num_classes, head, head_kw or {})


def build_cnn(
    input_shape: Sequence[int],
    channels: Sequence[int],
    num_classes: int,
    *,
    batch_norm: bool = True,
    head: HeadSpec = "conv",
    head_kw: dict[str, Any] | None = None,
) -> LocalNet:
    """One stage per entry of ``channels``: ``Conv3x3 -> BatchNorm -> ReLU``, then 2x2 max-pooling
    while the feature map is at least 4 pixels wide (so 8x8 digits and 28x28 images both fit)."""
    check_number(num_classes, name="num_classes", owner="build_cnn", low=2, integer=True)
    check_sizes(channels, name="channels", owner="build_cnn")
    if len(input_shape) != 3:
        raise ValueError(f"build_cnn expects a (C, H, W) input shape; got {tuple(input_shape)}.")
    blocks: list[nn.Module] = []
    in_channels, size = input_shape[0], min(input_shape[1:])
    for out_channels in channels:
        check_number(out_channels, name="channels", owner="build_cnn", low=1, integer=True)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
        if size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        blocks.append(nn.Sequential(*layers))
        in_channels = out_channels
    return _stages(blocks, input_shape, num_classes, head, head_kw or {})
