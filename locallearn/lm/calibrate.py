"""CALM's threshold calibration (Schuster et al. 2022): the lowest confidence threshold whose inconsistency with
full-model decoding is controlled on validation prompts, by Learn-then-Test (Angelopoulos et al. 2021).

The loss of one prompt is its inconsistency: the fraction of the ``new`` generated ids that differ,
position by position, from the full model's greedy ids (in [0, 1]; CALM's token-level textual
consistency). For thresholds from the most cautious down (a grid fixed before seeing data), the null
"mean inconsistency > delta" is tested with Hoeffding's p-value ``exp(-2 n (delta - mean)^2)`` over
the ``n`` prompts; thresholds are accepted in order while ``p <= epsilon`` (fixed-sequence testing)
and the last accepted one is returned, so that ``P(inconsistency <= delta) >= 1 - epsilon`` over the
draw of the prompts (``inf``, never exit early, if none is accepted). CALM uses LTT the same way; its
p-value is Hoeffding-Bentkus, tighter than Hoeffding's alone.

Example:
    >>> hoeffding_p_value(0.05, delta=0.1, n=400) < 0.2
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from locallearn._params import check_number
from locallearn.lm.decode import calm, greedy
from locallearn.net import LocalNet

GRID = (0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def inconsistency(ids: torch.Tensor, reference: torch.Tensor) -> float:
    """The fraction of positions where ``ids`` differ from ``reference`` (same length)."""
    if ids.shape != reference.shape:
        raise ValueError(f"inconsistency compares sequences of one length; got {tuple(ids.shape)} and {tuple(reference.shape)}.")
    return float((ids != reference).double().mean())


def hoeffding_p_value(mean: float, *, delta: float, n: int) -> float:
    """Hoeffding's p-value of "risk > delta" for a mean of ``n`` losses in [0, 1]."""
    return 1.0 if mean >= delta else math.exp(-2 * n * (delta - mean) ** 2)


@dataclass
class CalmCalibration:
    """The calibrated threshold and, per tested threshold, the mean inconsistency and p-value."""

    threshold: float
    delta: float
    epsilon: float
    tested: list[dict[str, float]] = field(default_factory=list)


def calibrate_calm(
    net: LocalNet, prompts: Sequence[torch.Tensor], new: int, *, delta: float = 0.1, epsilon: float = 0.1,
    grid: Sequence[float] = GRID,
) -> CalmCalibration:
    """Learn-then-Test over ``grid`` (tested from the highest threshold down) on validation ``prompts``."""
    check_number(delta, name="delta", owner="calibrate_calm", low=0.0, high=1.0, low_inclusive=False)
    check_number(epsilon, name="epsilon", owner="calibrate_calm", low=0.0, high=1.0, low_inclusive=False)
    if not prompts:
        raise ValueError("calibrate_calm needs at least one validation prompt.")
    references = [greedy(net, p, new) for p in prompts]
    result = CalmCalibration(math.inf, delta, epsilon)
    for threshold in sorted(grid, reverse=True):
        losses = [inconsistency(calm(net, p, new, threshold=threshold)[0], r) for p, r in zip(prompts, references)]
        mean = sum(losses) / len(losses)
        p = hoeffding_p_value(mean, delta=delta, n=len(losses))
        result.tested.append({"threshold": threshold, "mean_inconsistency": mean, "p_value": p})
        if p > epsilon:
            break
        result.threshold = threshold
    return result
