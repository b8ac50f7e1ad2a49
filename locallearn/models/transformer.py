"""Pre-norm transformer layers shared by ``vit`` and ``char-lm``: self-attention, MLP, encoder block.

Every weight matrix is a plain ``nn.Linear`` (no ``nn.MultiheadAttention``), so the feedback
modes of ``locallearn.feedback`` (FA, DFA, sign-symmetric) convert every layer of a block;
LayerNorm is kept as it is. A block is ``x + attn(LN(x))`` then ``x + mlp(LN(x))``
(the pre-norm block of ViT, Dosovitskiy et al. 2021, and GPT-2).

With ``causal=True`` attention position ``t`` sees positions ``<= t``; a ``KVCache`` passed to
``forward`` holds the keys and values of the positions already run, so decoding feeds only
the new tokens (the cache is appended to in place; ``KVCache.crop`` forgets rejected tokens).

A ``TokenStage`` is one stage of such a model: an optional embedding, then a run of blocks; its
output is ``(B, T, dim)`` tokens (``locallearn.tokens``). ``TransformerFamily`` holds the shape
hyper-parameters ``vit`` and ``char-lm`` share.

Example:
    >>> import torch
    >>> block = EncoderBlock(16, heads=2, mlp_ratio=2.0)
    >>> block(torch.randn(3, 5, 16)).shape
    torch.Size([3, 5, 16])
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.models.base import ModelFamily
from locallearn.net import LocalNet, Stage


class KVCache:
    """Keys and values of the positions run so far, one ``(B, heads, T, d)`` pair per attention layer.

    Example:
        >>> cache = KVCache()
        >>> cache.length
        0
    """

    def __init__(self) -> None:
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    @property
    def length(self) -> int:
        """Number of positions held (0 when empty)."""
        return next(iter(self.keys.values())).shape[2] if self.keys else 0

    def layer_length(self, layer: int) -> int:
        """Number of positions held for one attention layer."""
        return self.keys[layer].shape[2] if layer in self.keys else 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys and values of ``layer``; return all of them."""
        if layer in self.keys:
            k, v = torch.cat([self.keys[layer], k], 2), torch.cat([self.values[layer], v], 2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on, in every layer."""
        for layer in self.keys:
            self.keys[layer] = self.keys[layer][:, :, :length]
            self.values[layer] = self.values[layer][:, :, :length]


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with ``nn.Linear`` projections."""

    def __init__(self, dim: int, heads: int, *, causal: bool = False) -> None:
        super().__init__()
        check_number(dim, name="dim", owner="SelfAttention", low=1, integer=True)
        check_number(heads, name="heads", owner="SelfAttention", low=1, integer=True)
        if dim % heads:
            raise ValueError(f"SelfAttention needs 'dim' divisible by 'heads'; got dim={dim}, heads={heads}.")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)

    def fill_cache(self, x: torch.Tensor, cache: KVCache, layer: int) -> None:
        """Append the keys and values of ``x`` to ``cache`` without attending (CALM's state propagation)."""
        _, k, v = self._qkv(x)
        cache.append(layer, k, v)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self._qkv(x)
        past = 0
        if cache is not None:
            past = cache.layer_length(layer)
            k, v = cache.append(layer, k, v)
        if self.causal and t > 1:
            # query i (absolute position past + i) sees keys 0 .. past + i
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """``Linear -> GELU -> Linear`` with hidden width ``mlp_ratio * dim``."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * check_number(mlp_ratio, name="mlp_ratio", owner="FeedForward", low=0.0,
                                                 low_inclusive=False)))
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block on ``(B, T, dim)`` tokens; ``causal`` for a decoder."""

    def __init__(self, dim: int, *, heads: int, mlp_ratio: float = 2.0, causal: bool = False) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim, heads, causal=causal)
        self.norm2, self.mlp = nn.LayerNorm(dim), FeedForward(dim, mlp_ratio)

    def fill_cache(self, x: torch.Tensor, cache: KVCache, layer: int) -> None:
        """Append this block's keys and values for the hidden states ``x`` (skipped by an early exit)."""
        self.attn.fill_cache(self.norm1(x), cache, layer)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))


class TokenStage(nn.Module):
    """A run of blocks (the first stage also embeds); ``forward(h, cache, start)`` for cached decoding,
    ``start`` being the position of ``h``'s first token. Output: ``(B, T, dim)`` tokens."""

    feature_kind = "tokens"

    def __init__(self, blocks: list[nn.Module], dim: int, *, first_layer: int = 0, embedding: nn.Module | None = None) -> None:
        super().__init__()
        self.feature_width, self.first_layer = dim, first_layer
        self.embedding = embedding
        self.blocks = nn.ModuleList(blocks)

    def forward(self, h: torch.Tensor, cache: KVCache | None = None, start: int = 0) -> torch.Tensor:
        if self.embedding is not None:
            h = self.embedding(h, start)
        for i, block in enumerate(self.blocks):
            h = block(h, cache, self.first_layer + i)
        return h


class TransformerFamily(ModelFamily):
    """The shape of a stack of ``depth`` blocks of width ``dim``, ``blocks_per_stage`` blocks per stage."""

    def __init__(self, *, dim: int, depth: int, heads: int, mlp_ratio: float, blocks_per_stage: int) -> None:
        owner = type(self).__name__
        self.dim = check_number(dim, name="dim", owner=owner, low=1, integer=True)
        self.depth = check_number(depth, name="depth", owner=owner, low=1, integer=True)
        self.heads = check_number(heads, name="heads", owner=owner, low=1, integer=True)
        self.mlp_ratio = check_number(mlp_ratio, name="mlp_ratio", owner=owner, low=0.0, low_inclusive=False)
        self.blocks_per_stage = check_number(blocks_per_stage, name="blocks_per_stage", owner=owner, low=1, integer=True)
        if self.depth % self.blocks_per_stage or self.dim % self.heads:
            raise ValueError(f"{owner} needs depth ({depth}) a multiple of blocks_per_stage ({blocks_per_stage}) "
                             f"and dim ({dim}) divisible by heads ({heads}).")

    def num_stages(self) -> int:
        return self.depth // self.blocks_per_stage

    def stages(
        self, embedding: nn.Module, head: Callable[[], nn.Module], *, causal: bool, input_shape: Sequence[int],
        input_dtype: torch.dtype = torch.float32,
    ) -> LocalNet:
        """The net for inputs of ``input_shape`` and ``input_dtype``: per stage its blocks (the first stage
        holding ``embedding`` too), then ``head()``."""
        n, stages = self.blocks_per_stage, []
        for k in range(self.num_stages()):
            blocks = [EncoderBlock(self.dim, heads=self.heads, mlp_ratio=self.mlp_ratio, causal=causal) for _ in range(n)]
            stages.append(Stage(TokenStage(blocks, self.dim, first_layer=k * n, embedding=embedding if k == 0 else None), head()))
        return LocalNet(stages, input_shape=input_shape, input_dtype=input_dtype)
