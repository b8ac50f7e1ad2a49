"""Pre-norm transformer layers shared by ``vit`` and ``char-lm``: self-attention, MLP, encoder block.

Every weight matrix is a plain ``nn.Linear`` (no ``nn.MultiheadAttention``), so the feedback
modes of ``locallearn.feedback`` (FA, DFA, sign-symmetric) convert every layer of a block;
LayerNorm is kept as it is. A block is ``x + attn(LN(x))`` then ``x + mlp(LN(x))``
(the pre-norm block of ViT, Dosovitskiy et al. 2021, and GPT-2).

With ``causal=True`` attention position ``t`` sees positions ``<= t``; a ``KVCache`` passed to
``forward`` holds the keys and values of the positions already run, so decoding feeds only
the new tokens (the cache is appended to in place; ``KVCache.crop`` forgets rejected tokens).

Example:
    >>> import torch
    >>> block = EncoderBlock(16, heads=2, mlp_ratio=2.0)
    >>> block(torch.randn(3, 5, 16)).shape
    torch.Size([3, 5, 16])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number


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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))
