"""``vit``: a vision transformer (Dosovitskiy et al. 2021) cut into stages by encoder blocks.

Patch embedding (a ``Conv2d`` with kernel and stride ``patch``), a learned class token put
first, learned position embeddings, then ``depth`` pre-norm encoder blocks
(``locallearn.models.transformer``). Stage ``k`` holds ``blocks_per_stage`` blocks (the first
stage also the embedding); every stage's output is the ``(B, 1 + N, dim)`` tokens, read out by
the ``token`` head (``pool="cls"``: layer-normalised class token, ViT's classifier; ``"mean"``:
the token mean). The class token and position table are ``nn.Embedding`` weights, which the
feedback modes keep as they are (they carry no weight matrix back to their input).

Departures from the paper, for CPU-sized runs: no dropout, ``mlp_ratio`` 2 by default (ViT-B
uses 4), class token and position embeddings drawn from N(0, 0.02^2) as the authors' code.

Example:
    >>> import torch
    >>> from locallearn import models
    >>> net = models.build("vit", (1, 28, 28), 10, patch=7, dim=32, depth=4, heads=2)
    >>> net.num_exits, [tuple(f.shape) for f in net(torch.zeros(2, 1, 28, 28), return_features=True)[1]][:1]
    (4, [(2, 17, 32)])
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from locallearn._params import check_number
from locallearn.heads import make_head
from locallearn.models.base import MODELS
from locallearn.models.transformer import TransformerFamily
from locallearn.net import LocalNet


class PatchEmbedding(nn.Module):
    """``(B, C, H, W)`` image to ``(B, 1 + N, dim)`` tokens: class token, then the patches row-major."""

    def __init__(self, input_shape: Sequence[int], patch: int, dim: int) -> None:
        super().__init__()
        if len(input_shape) != 3 or input_shape[1] % patch or input_shape[2] % patch:
            raise ValueError(
                f"vit needs a (C, H, W) input whose height and width are multiples of 'patch' ({patch}); "
                f"got input shape {tuple(input_shape)}."
            )
        channels, height, width = input_shape
        self.num_patches = (height // patch) * (width // patch)
        self.conv = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls = nn.Embedding(1, dim)
        self.position = nn.Embedding(1 + self.num_patches, dim)
        for table in (self.cls, self.position):
            nn.init.trunc_normal_(table.weight, std=0.02)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        if start:
            raise ValueError("An image's tokens all start at position 0.")
        patches = self.conv(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.weight.expand(len(x), 1, -1), patches], 1)
        return tokens + self.position.weight


@MODELS.register("vit")
class ViT(TransformerFamily):
    """A vision transformer; ``depth // blocks_per_stage`` stages, each with a token head."""

    default_head = "token"
    tiny_input_shape = (1, 8, 8)

    def __init__(
        self,
        *,
        patch: int = 7,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        blocks_per_stage: int = 1,
        head: str | None = None,
        head_kw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, blocks_per_stage=blocks_per_stage)
        self.patch = check_number(patch, name="patch", owner="ViT", low=1, integer=True)
        self.head = head
        self.head_kw = head_kw

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        embedding = PatchEmbedding(input_shape, self.patch, self.dim)
        tokens = (1 + embedding.num_patches, self.dim)
        name = self.head or self.default_head
        return self.stages(embedding, lambda: make_head(name, tokens, num_classes, **(self.head_kw or {})), causal=False,
                           input_shape=input_shape)

    def describe(self) -> str:
        return f"vit p{self.patch} d{self.dim} x{self.depth}"

    @classmethod
    def tiny(cls, stages: int) -> ViT:
        return cls(patch=4, dim=8, depth=stages, heads=2)
