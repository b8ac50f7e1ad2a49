"""Compute cost: FLOPs per block and head, the expected cascaded cost (eq. 12) and its soft twin (eq. 13-14).

Cost of leaving at exit k (every block and head up to k has run):
``C_k = sum_{j<=k} (b_j + h_j)``. Survey eq. 12, the expected cascaded cost:
``E[C] = sum_k f_k C_k`` with ``f_k`` the fraction of samples leaving at k.
The reference "full network" runs every block and only the last head:
``C_full = sum_j b_j + h_{K-1}``.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products and convolutions, ``2 * multiply-adds``; element-wise ops, pooling and
normalisation count 0).

Example:
    >>> table = CostTable(blocks=(10.0, 20.0), heads=(1.0, 2.0))
    >>> table.cumulative.tolist(), table.full
    ([11.0, 33.0], 32.0)
    >>> expected_cost([0.5, 0.5], table)
    22.0
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..heads_cascade import head_logits


@dataclasses.dataclass(frozen=True)
class CostTable:
    """Per-sample cost of every block ``b_k`` and head ``h_k``, in ``unit`` ("flops", "s" for a measured
    latency table, or any other name)."""

    blocks: tuple[float, ...]
    heads: tuple[float, ...]
    unit: str = "flops"

    def __post_init__(self) -> None:
        blocks, heads = tuple(float(b) for b in self.blocks), tuple(float(h) for h in self.heads)
        if len(blocks) != len(heads) or not blocks or min(blocks + heads) < 0:
            raise ValueError(
                "CostTable needs one non-negative cost per block and per head, as many heads as blocks. "
                f"Got blocks={blocks} and heads={heads} instead."
            )
        if not isinstance(self.unit, str) or not self.unit:
            raise ValueError(f"CostTable.unit must be a non-empty string such as 'flops' or 's'. Got {self.unit!r} instead.")
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "heads", heads)

    @classmethod
    def uniform(cls, n_exits: int) -> CostTable:
        """Every block costs 1 and heads cost 0 (a stand-in when FLOPs are unknown)."""
        return cls(blocks=(1.0,) * n_exits, heads=(0.0,) * n_exits)

    @property
    def n_exits(self) -> int:
        return len(self.blocks)

    @property
    def cumulative(self) -> torch.Tensor:
        """``C_k``: the cost of leaving at exit k, for k = 0..K-1."""
        return torch.tensor(self.blocks, dtype=torch.float64).cumsum(0) + torch.tensor(self.heads, dtype=torch.float64).cumsum(0)

    @property
    def full(self) -> float:
        """The network without early exits: every block and only the last head."""
        return sum(self.blocks) + self.heads[-1]


def count_flops(module: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """FLOPs of ``module(x)`` (forward only, no grad) and its output."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(x)
    return float(counter.get_total_flops()), out


def stage_costs(blocks: Sequence[nn.Module], heads: Sequence[nn.Module], input_shape: Sequence[int]) -> CostTable:
    """Per-sample FLOPs of every block and head for one input of shape ``input_shape`` (no batch dim).

    Modules are put in eval mode while counting and restored afterwards.

    Example:
        >>> table = stage_costs([nn.Linear(4, 8), nn.Linear(8, 8)], [nn.Linear(8, 3)] * 2, (4,))
        >>> table.blocks, table.heads
        ((64.0, 128.0), (48.0, 48.0))
    """
    if len(blocks) != len(heads) or not blocks:
        raise ValueError(f"stage_costs needs as many heads as blocks (at least one). Got {len(blocks)} blocks and {len(heads)} heads.")
    modules = list(blocks) + list(heads)
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        h = torch.zeros(1, *input_shape)
        block_flops, head_flops, previous = [], [], None
        for block, head in zip(blocks, heads):
            f_block, h = count_flops(block, h)
            f_head, previous = count_flops(functools.partial(head_logits, head, previous=previous), h)
            block_flops.append(f_block)
            head_flops.append(f_head)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    return CostTable(blocks=tuple(block_flops), heads=tuple(head_flops))


def per_sample_cost(exit_index: torch.Tensor, table: CostTable) -> torch.Tensor:
    """``C_{exit_i}`` for every sample."""
    return table.cumulative[exit_index]


def exit_fractions(exit_index: torch.Tensor, n_exits: int) -> torch.Tensor:
    """``f_k``: the fraction of samples leaving at each exit."""
    return torch.bincount(exit_index, minlength=n_exits).double() / max(len(exit_index), 1)


def expected_cost(fractions: Sequence[float] | torch.Tensor, table: CostTable) -> float:
    """Survey eq. 12: ``sum_k f_k C_k``."""
    f = torch.as_tensor(fractions, dtype=torch.float64)
    if f.shape != (table.n_exits,) or (f < 0).any() or abs(float(f.sum()) - 1) > 1e-6:
        raise ValueError(f"expected_cost needs {table.n_exits} non-negative exit fractions summing to 1. Got {f.tolist()} instead.")
    return float((f * table.cumulative).sum())


def soft_exit_probabilities(confidence: torch.Tensor) -> torch.Tensor:
    """Survey eq. 13: ``P_k = c_k * prod_{j<k} (1 - c_j)``; the last exit takes what is left.

    ``confidence`` is ``[K, N]`` in [0, 1]; the result ``[K, N]`` sums to 1 over exits.
    """
    stay = torch.cumprod(1 - confidence[:-1], 0)
    not_before = torch.cat([torch.ones_like(confidence[:1]), stay], 0)
    leave_here = torch.cat([confidence[:-1], torch.ones_like(confidence[:1])], 0)
    return not_before * leave_here


def soft_expected_cost(confidence: torch.Tensor, table: CostTable) -> torch.Tensor:
    """Survey eq. 14: ``mean_n sum_k P_k(n) C_k / C_full``, differentiable in ``confidence``."""
    probs = soft_exit_probabilities(confidence)
    cumulative = table.cumulative.to(probs.dtype)[:, None]
    return (probs * cumulative).sum(0).mean() / table.full


def soft_cost_penalty(
    logits: Sequence[torch.Tensor], table: CostTable, *, threshold: float = 0.9, temperature: float = 0.05
) -> torch.Tensor:
    """A regulariser for the ``joint`` rule: the soft relative cost with ``c_k = sigmoid((max p_k - q) / tau)``.

    As ``tau -> 0`` it tends to the hard cascaded cost of the max-prob policy with threshold ``q``.

    Example:
        >>> z = [torch.randn(8, 3, requires_grad=True) for _ in range(2)]
        >>> soft_cost_penalty(z, CostTable.uniform(2)).backward()
    """
    sure = torch.stack([torch.softmax(z, -1).amax(-1) for z in logits])
    return soft_expected_cost(torch.sigmoid((sure - threshold) / temperature), table)
