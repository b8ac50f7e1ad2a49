"""Synthetic per-exit logits with known structure, for tests and examples.

Each sample has a difficulty ``u ~ U(0, 1)``; exit k's logits are
``z = s_k * (1 - u) * onehot(y) + noise`` with strengths ``s_k`` growing with
depth, so later exits are more accurate and confident early exits are mostly right.

Example:
    >>> data = synthetic_exit_logits(n_samples=100, seed=0)
    >>> data.logits.shape, data.split
    (torch.Size([3, 100, 10]), 'val')
"""

from __future__ import annotations

from typing import Sequence

import torch

from .cache import ExitLogits


def synthetic_exit_logits(
    *, n_samples: int, strengths: Sequence[float] = (3.0, 5.0, 8.0), n_classes: int = 10, seed: int = 0, split: str = "val"
) -> ExitLogits:
    """``len(strengths)`` exits of ``n_samples`` rows (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, (n_samples,), generator=g)
    ease = 1 - torch.rand(n_samples, generator=g)
    onehot = torch.nn.functional.one_hot(labels, n_classes).float()
    logits = torch.stack(
        [s * ease[:, None] * onehot + torch.randn(n_samples, n_classes, generator=g) for s in strengths]
    )
    return ExitLogits(logits, labels, split)
