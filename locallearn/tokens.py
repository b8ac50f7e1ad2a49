"""Token features ``(B, T, D)``: the one layout convention, pooling, and the patch grid as a feature map.

Features of shape ``(B, T, D)`` are tokens: ``T`` positions of width ``D``. A vision
transformer's tokens are its extra tokens first (the class token) then its patch grid in
row-major order (ViT, DeiT). A block whose output is tokens declares ``feature_kind =
"tokens"`` and ``feature_width = D``, so rules can size their modules without probing.

Example:
    >>> import torch
    >>> h = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)   # class token + 2x2 patches
    >>> pool_tokens(h, "cls").shape, pool_tokens(h, "mean").shape, tokens_to_map(h).shape
    (torch.Size([2, 3]), torch.Size([2, 3]), torch.Size([2, 3, 2, 2]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

POOLS = ("cls", "mean")


def is_token_block(block: nn.Module) -> bool:
    """Whether ``block`` declares token output (``feature_kind == "tokens"``)."""
    return getattr(block, "feature_kind", None) == "tokens"


def check_tokens(in_shape: tuple[int, ...] | torch.Size, owner: str) -> None:
    """Refuse features that are not ``(T, D)`` tokens (shape without the batch), in one line."""
    if len(in_shape) != 2:
        raise ValueError(
            f"{owner} expects token features (T, D); got features of shape {tuple(in_shape)}. "
            "Use head='linear' for flat features or 'conv' for (C, H, W) maps."
        )


def pool_tokens(h: torch.Tensor, pool: str = "mean") -> torch.Tensor:
    """``(B, T, D) -> (B, D)``: the first (class) token, or the mean over tokens."""
    if pool == "cls":
        return h[:, 0]
    if pool == "mean":
        return h.mean(1)
    raise ValueError(f"Unknown token pooling {pool!r}; expected one of {', '.join(POOLS)}.")


def tokens_to_map(h: torch.Tensor) -> torch.Tensor:
    """The patch tokens of ``(B, T, D)`` as a ``(B, D, g, g)`` map: the last ``g * g`` tokens with
    ``g = floor(sqrt(T))`` (the extra tokens before them, at most ``2 g``, are dropped)."""
    b, t, d = h.shape
    g = math.isqrt(t)
    if t - g * g > 2 * g:
        raise ValueError(f"{t} tokens are not a square patch grid after a few extra tokens; cannot view them as a map.")
    return h[:, t - g * g :].transpose(1, 2).reshape(b, d, g, g)
