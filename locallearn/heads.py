"""Auxiliary heads: each stage's classifier, which doubles as an early exit.

A head is built from the shape of its block's output (without the batch
dimension) and the number of classes. ``make_head`` accepts a registered name,
a callable ``(in_shape, num_classes) -> nn.Module`` or a ready module.

Example:
    >>> import torch
    >>> head = make_head("conv", (16, 8, 8), 10, pool="mixed", grid=2)
    >>> head(torch.zeros(3, 16, 8, 8)).shape
    torch.Size([3, 10])
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

import torch
from torch import nn

from locallearn._params import check_choice, check_number
from locallearn._registry import Registry
from locallearn.tokens import POOLS, check_tokens, pool_tokens

HEADS: Registry[nn.Module] = Registry("head", group="locallearn.heads")
HeadSpec = Union[str, nn.Module, Callable[[tuple[int, ...], int], nn.Module]]


@HEADS.register("linear")
class LinearHead(nn.Module):
    """Flatten, then one linear layer.

    Args:
        zero_weight: start the weight at zero (the bias keeps ``nn.Linear``'s init), as the authors'
            code starts every local prediction read-out (``decoder_y.weight.data.zero_()``) and, for
            the local rules, the output layer (``layer_out``); off by default (``nn.Linear``'s init,
            what a backprop output layer gets in their code too). With a zero weight the head sends
            no gradient to its block until its weight has moved away from zero.

    Example:
        >>> head = LinearHead((4,), 3, zero_weight=True)
        >>> bool(head.linear.weight.eq(0).all()), bool(head.linear.bias.ne(0).any())
        (True, True)

    Source: Nøkland & Eidnes, ICML 2019 (the local prediction read-out decoder_y, anokland/local-loss).
    """

    source = 'Nøkland & Eidnes, ICML 2019 (the local prediction read-out decoder_y, anokland/local-loss)'

    def __init__(self, in_shape: Sequence[int], num_classes: int, *, zero_weight: bool = False) -> None:
        super().__init__()
        self.zero_weight = check_choice(zero_weight, name="zero_weight", owner="LinearHead", choices=(False, True))
        self.linear = nn.Linear(math.prod(in_shape), num_classes)
        if self.zero_weight:
            nn.init.zeros_(self.linear.weight)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h.flatten(1))


@HEADS.register("mlp")
class MLPHead(nn.Module):
    """Flatten, then one or two hidden ReLU layers and a linear read-out.

    Source: Belilovsky, Eickenberg & Oyallon, ICML 2020 (an MLP auxiliary net as DGL's 'mlp', eugenium/DGL; here without its BatchNorm).
    """

    source = "Belilovsky, Eickenberg & Oyallon, ICML 2020 (an MLP auxiliary net as DGL's 'mlp', eugenium/DGL; here without its BatchNorm)"

    def __init__(self, in_shape: Sequence[int], num_classes: int, *, hidden: Sequence[int] = (128,)) -> None:
        super().__init__()
        hidden = tuple(hidden)
        if not 1 <= len(hidden) <= 2:
            raise ValueError(f"The 'hidden' parameter of MLPHead must list 1 or 2 widths. Got {hidden!r} instead.")
        for width in hidden:
            check_number(width, name="hidden", owner="MLPHead", low=1, integer=True)
        self.hidden = hidden
        widths = (math.prod(in_shape), *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)


def _check_feature_map(in_shape: Sequence[int], owner: str) -> None:
    """Refuse flat features for a head that needs a ``(C, H, W)`` map."""
    if len(in_shape) != 3:
        raise ValueError(
            f"{owner} expects a (C, H, W) feature map; got features of shape {tuple(in_shape)}. "
            "Use head='linear' or 'mlp' for flat features."
        )


@HEADS.register("conv")
class ConvHead(nn.Module):
    """Pool a ``(C, H, W)`` feature map to a ``grid x grid`` map (average, or the mean of
    max and average pooling: "mixed"), flatten, then one linear layer.

    Source: Nøkland & Eidnes, ICML 2019 (average pooling before the linear read-out, anokland/local-loss); 'mixed' pooling: Lee, Gallagher & Tu, AISTATS 2016.
    """

    source = "Nøkland & Eidnes, ICML 2019 (average pooling before the linear read-out, anokland/local-loss); 'mixed' pooling: Lee, Gallagher & Tu, AISTATS 2016"

    def __init__(
        self, in_shape: Sequence[int], num_classes: int, *, pool: str = "avg", grid: int = 2
    ) -> None:
        super().__init__()
        _check_feature_map(in_shape, "ConvHead")
        self.pool = check_choice(pool, name="pool", owner="ConvHead", choices=("avg", "mixed"))
        self.grid = check_number(grid, name="grid", owner="ConvHead", low=1, integer=True)
        self.linear = nn.Linear(in_shape[0] * grid * grid, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(h, self.grid)
        if self.pool == "mixed":
            pooled = 0.5 * (pooled + nn.functional.adaptive_max_pool2d(h, self.grid))
        return self.linear(pooled.flatten(1))


@HEADS.register("infopro")
class InfoProHead(nn.Module):
    """InfoPro's auxiliary classifier, its default ``1c2f`` (Wang et al., ICLR 2021;
    blackfeather-wang/InfoPro-Pytorch ``networks/auxiliary_nets.py``, ``cross_entropy`` mode):
    ``Conv3x3 -> BatchNorm -> ReLU``, global average pooling, ``Linear -> ReLU -> Linear``.

    As the authors' ResNet heads: a map of fewer than 64 channels goes to twice as many with
    stride 2 (16 -> 32, 32 -> 64), one of 64 or more keeps its width with stride 1; the hidden
    linear layer has ``hidden`` (128) units. The authors list 16, 32 and 64 channels only; the
    same rule is applied to any width.

    Example:
        >>> head = InfoProHead((16, 32, 32), 10)
        >>> head(torch.zeros(2, 16, 32, 32)).shape, head.layers[0].out_channels
        (torch.Size([2, 10]), 32)
    """

    source = "Wang, Ni, Song, Yang & Huang, ICLR 2021 (blackfeather-wang/InfoPro-Pytorch, networks/auxiliary_nets.py)"

    def __init__(self, in_shape: Sequence[int], num_classes: int, *, hidden: int = 128) -> None:
        super().__init__()
        _check_feature_map(in_shape, "InfoProHead")
        self.hidden = check_number(hidden, name="hidden", owner="InfoProHead", low=1, integer=True)
        channels = in_shape[0]
        out, stride = (2 * channels, 2) if channels < 64 else (channels, 1)
        self.layers = nn.Sequential(
            nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(out, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)


DGL_LAYOUTS = ("authors", "plain")


class _PrePool(nn.Module):
    """Average-pool a map to ``ceil(H / 4) x ceil(W / 4)`` (DGL's 1x1-conv auxiliary nets "reduce the size by 16")."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(h, (math.ceil(h.shape[-2] / 4), math.ceil(h.shape[-1] / 4)))


@HEADS.register("dgl")
class DGLHead(nn.Module):
    """DGL auxiliary network (Belilovsky, Eickenberg & Oyallon, ICML 2020; authors' code eugenium/DGL,
    ``auxiliary_nets_study/models.py``, ``auxillary_classifier2``).

    With ``layout="authors"`` (default), as the authors' code:

    * with 1x1 convs (``kernel_size=1``), the map is first average-pooled to a quarter of its
      height and width (``ceil(H/4) x ceil(W/4)``); 3x3 convs see the full map;
    * ``convs`` layers ``Conv (no bias) -> BatchNorm2d -> ReLU``, the block's width kept;
    * average pooling to a ``grid x grid`` map (the authors' 2x2);
    * without hidden linear layers: ``BatchNorm2d`` on the pooled map, flatten, a linear classifier;
      with ``mlp_layers`` hidden layers: flatten, ``mlp_layers x (Linear -> BatchNorm1d -> ReLU)`` of
      width ``channels x grid x grid``, a linear classifier.

    The defaults (two 3x3 convs, no hidden linear layer) are the authors' ``cnn`` auxiliary net;
    ``kernel_size=1, convs=3, mlp_layers=3`` is their ``mlp-sr``, ``convs=0, mlp_layers=3`` their ``mlp``.
    ``layout="plain"`` is this package's earlier head (a named departure): no pooling before the
    convs, no BatchNorm before the classifier or in the hidden layers, hidden width ``4 x channels``.

    Example:
        >>> head = DGLHead((8, 7, 7), 10, convs=1, kernel_size=1, mlp_layers=1)
        >>> head(torch.zeros(4, 8, 7, 7)).shape
        torch.Size([4, 10])
    """

    source = "Belilovsky, Eickenberg & Oyallon, ICML 2020 (eugenium/DGL)"

    def __init__(
        self, in_shape: Sequence[int], num_classes: int, *, convs: int = 2, kernel_size: int = 3, grid: int = 2,
        mlp_layers: int = 0, layout: str = "authors",
    ) -> None:
        super().__init__()
        _check_feature_map(in_shape, "DGLHead")
        owner = "DGLHead"
        self.convs = check_number(convs, name="convs", owner=owner, low=0, integer=True)
        self.kernel_size = check_choice(kernel_size, name="kernel_size", owner=owner, choices=(1, 3))
        self.grid = check_number(grid, name="grid", owner=owner, low=1, integer=True)
        self.mlp_layers = check_number(mlp_layers, name="mlp_layers", owner=owner, low=0, integer=True)
        self.layout = check_choice(layout, name="layout", owner=owner, choices=DGL_LAYOUTS)
        authors = self.layout == "authors"
        channels = in_shape[0]
        layers: list[nn.Module] = [_PrePool()] if authors and self.kernel_size == 1 else []
        for _ in range(self.convs):
            layers += [nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU()]
        layers.append(nn.AdaptiveAvgPool2d(grid))
        if authors and not self.mlp_layers:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.Flatten())
        width = channels * grid * grid
        hidden = width if authors else 4 * channels
        for _ in range(self.mlp_layers):
            layers += [nn.Linear(width, hidden), *([nn.BatchNorm1d(hidden)] if authors else []), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)


@HEADS.register("token")
class TokenHead(nn.Module):
    """Read ``(T, D)`` token features out: the class token (``pool="cls"``, ViT's classifier) or the
    mean of the tokens (``pool="mean"``), then LayerNorm and one linear layer. Refuses other features.

    Example:
        >>> head = TokenHead((5, 8), 3, pool="mean")
        >>> head(torch.zeros(2, 5, 8)).shape
        torch.Size([2, 3])

    Source: Dosovitskiy et al., ICLR 2021 (ViT's class-token classifier; google-research/vision_transformer).
    """

    source = "Dosovitskiy et al., ICLR 2021 (ViT's class-token classifier; google-research/vision_transformer)"

    def __init__(self, in_shape: Sequence[int], num_classes: int, *, pool: str = "cls") -> None:
        super().__init__()
        check_tokens(tuple(in_shape), "TokenHead")
        self.pool = check_choice(pool, name="pool", owner="TokenHead", choices=POOLS)
        self.norm = nn.LayerNorm(in_shape[-1])
        self.linear = nn.Linear(in_shape[-1], num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(pool_tokens(h, self.pool)))


def make_head(spec: HeadSpec, in_shape: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build a head for features of shape ``in_shape`` from a name, a factory or a module."""
    if isinstance(spec, str):
        return HEADS.get(spec)(tuple(in_shape), num_classes, **kwargs)
    if isinstance(spec, nn.Module):
        return spec
    if callable(spec):
        return spec(tuple(in_shape), num_classes, **kwargs)
    raise TypeError(f"A head must be a name ({', '.join(HEADS.names())}), a factory or an nn.Module; got {spec!r}.")
