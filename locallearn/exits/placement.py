"""Where to put exits: at given fractions of the total cost, and whether an exit pays for itself (eq. 4).

Survey eq. 4 (efficiency condition): an exit at k is worth adding when the
cost saved by the samples that leave there exceeds the cost of its head for
all samples that reach it: ``gain_k = f_k * S_k - r_k * h_k > 0`` with ``f_k``
the fraction leaving at k, ``S_k`` the cost each of them skips, ``r_k`` the
fraction reaching k and ``h_k`` the head's cost.

Example:
    >>> place_exits([1.0] * 10, fractions=(0.3, 0.6))
    [2, 5]
    >>> exit_gain(exit_fraction=0.5, saved_cost=100.0, reach_fraction=1.0, head_cost=10.0)
    40.0
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .cost import count_flops

#: Shallow-Deep Networks' internal classifiers, as fractions of the full network's FLOPs.
SDN_FRACTIONS = (0.15, 0.30, 0.45, 0.60, 0.75, 0.90)


def layer_flops(layers: Sequence[nn.Module], input_shape: Sequence[int]) -> list[float]:
    """Per-sample FLOPs of each layer of a sequential stack, for one input of ``input_shape``."""
    h = torch.zeros(1, *input_shape)
    flops = []
    for layer in layers:
        f, h = count_flops(layer, h)
        flops.append(f)
    return flops


def place_exits(layer_costs: Sequence[float], fractions: Sequence[float] = SDN_FRACTIONS) -> list[int]:
    """For each fraction ``a``, the layer after which the cumulative cost is closest to ``a * total``.

    Returns sorted, distinct layer indices (0-based; an exit goes after that layer).
    """
    costs = torch.as_tensor(list(layer_costs), dtype=torch.float64)
    if costs.numel() == 0 or (costs < 0).any() or costs.sum() <= 0:
        raise ValueError(f"place_exits needs non-negative layer costs with a positive total. Got {costs.tolist()} instead.")
    if any(not 0 < a <= 1 for a in fractions):
        raise ValueError(f"place_exits needs fractions in (0, 1]. Got {list(fractions)} instead.")
    cumulative = costs.cumsum(0)
    chosen = {int((cumulative - a * cumulative[-1]).abs().argmin()) for a in fractions}
    return sorted(chosen)


def exit_gain(*, exit_fraction: float, saved_cost: float, reach_fraction: float, head_cost: float) -> float:
    """Eq. 4's ``f_k * S_k - r_k * h_k``; the exit is worthwhile when this is > 0."""
    if not 0 <= exit_fraction <= reach_fraction <= 1:
        raise ValueError(
            f"exit_gain needs 0 <= exit_fraction <= reach_fraction <= 1. Got {exit_fraction} and {reach_fraction} instead."
        )
    return exit_fraction * saved_cost - reach_fraction * head_cost


def exit_gains(exit_index: torch.Tensor, blocks: Sequence[float], heads: Sequence[float]) -> list[float]:
    """Eq. 4 for every exit but the last, from where samples left: ``S_k`` = blocks after k plus the last head.

    Exact only for the last early exit (without it, its samples would run to the end). For an earlier exit
    it is an estimate: it assumes the samples leaving at k would otherwise run every later block and skip
    every later early head, whereas many would leave at a later exit (then it overstates the gain). For the
    exact gain, compare :func:`expected_cost` with and without exit k (as ``theory/t10_exit_placement.py`` does).
    """
    n = len(blocks)
    index = torch.as_tensor(exit_index)
    if len(heads) != n or n == 0:
        raise ValueError(f"exit_gains needs one head cost per block (at least one). Got {n} blocks and {len(heads)} heads.")
    if index.dim() != 1 or index.numel() == 0 or index.is_floating_point() or int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(f"exit_gains needs a non-empty 1-D integer exit index in [0, {n}). Got {index.tolist()} instead.")
    gains = []
    for k in range(n - 1):
        saved = sum(blocks[k + 1 :]) + heads[-1]
        gains.append(
            exit_gain(
                exit_fraction=float((index == k).double().mean()),
                saved_cost=saved,
                reach_fraction=float((index >= k).double().mean()),
                head_cost=heads[k],
            )
        )
    return gains
