"""Confidence measures of one exit's logits (pure functions, higher means surer).

The survey's eq. 11 (BranchyNet): the normalised entropy ``H(p) / log(C)`` of
``p = softmax(z)`` lies in [0, 1]; a sample exits when it is below a threshold
``T``. As a *sureness* (higher = surer) it is ``1 - H(p) / log(C)``.

Example:
    >>> import torch
    >>> z = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    >>> normalised_entropy(z).round(decimals=3)
    tensor([1.0000, 0.0010])
    >>> max_probability(z).round(decimals=3)
    tensor([0.5000, 1.0000])
"""

from __future__ import annotations

from typing import Callable

import torch


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``H(softmax(z)) / log(C)`` over the last dimension, in [0, 1]."""
    log_p = torch.log_softmax(logits, dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return entropy / torch.log(torch.tensor(float(logits.shape[-1])))


def max_probability(logits: torch.Tensor) -> torch.Tensor:
    """``max_c softmax(z)_c`` over the last dimension."""
    return torch.softmax(logits, dim=-1).amax(-1)


def top2_margin(logits: torch.Tensor) -> torch.Tensor:
    """Difference between the two largest softmax probabilities."""
    top = torch.softmax(logits, dim=-1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def entropy_sureness(logits: torch.Tensor) -> torch.Tensor:
    """``1 - H(p)/log(C)``: exiting when sureness >= t is exiting when H/log(C) <= 1 - t."""
    return 1.0 - normalised_entropy(logits)


SURENESS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "entropy": entropy_sureness,
    "max-prob": max_probability,
    "margin": top2_margin,
}
