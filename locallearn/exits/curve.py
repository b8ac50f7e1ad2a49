"""The accuracy-vs-FLOPs curve of a network's exits over every shared confidence threshold, and its area.

``threshold_curve`` sweeps one threshold ``t`` shared by every early exit (a sample leaves at the first
exit ``k < K-1`` whose sureness reaches ``t``, else at the last) over the quantiles of the pooled
sureness of the early exits, from "every sample leaves at the first exit" (cost ``C_0``) to "none leaves
early" (``t = inf``, cost ``C_{K-1}``: every block and every head ran), and records the accuracy and the
mean FLOPs per image at each point. The curve describes the trade-off over all thresholds and chooses
none, so it may be drawn on the test split; a threshold read off it would be tuned on that split.

``curve_area`` is the area under the piecewise-linear curve between two FLOPs values divided by their
distance, i.e. the mean accuracy over that range of costs (between two points, a random mix of their
two thresholds reaches every cost on the segment at the segment's accuracy). ``common_range`` is the
range every curve of a comparison covers, so that their areas are comparable.

Example:
    >>> curve = ExitCurve(flops=(1.0, 2.0, 3.0), accuracy=(0.5, 0.7, 0.9), thresholds=(0.0, 0.5, float("inf")))
    >>> round(curve_area(curve.flops, curve.accuracy, 1.0, 3.0), 6)
    0.7
    >>> common_range([curve, ExitCurve(flops=(1.5, 4.0), accuracy=(0.6, 0.8), thresholds=(0.0, float("inf")))])
    (1.5, 3.0)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from .cache import ExitLogits
from .cost import CostTable
from .policies import EXIT_POLICIES, ExitPolicy
from .thresholds import Outcomes


@dataclasses.dataclass(frozen=True)
class ExitCurve:
    """Mean FLOPs per image and accuracy at each shared threshold, in increasing cost."""

    flops: tuple[float, ...]
    accuracy: tuple[float, ...]
    thresholds: tuple[float, ...]


def threshold_curve(data: ExitLogits, policy: str | ExitPolicy, costs: CostTable, *, n_points: int = 101) -> ExitCurve:
    """The curve of ``policy`` (fitted already, if it learns) on ``data``: ``n_points`` quantiles of the pooled
    early-exit sureness as shared thresholds, then ``inf``."""
    policy = EXIT_POLICIES.create(policy)
    if not policy.is_fitted:
        raise ValueError(f"threshold_curve needs a fitted {type(policy).__name__}: fit it on a training or validation split first.")
    if data.n_exits < 2 or costs.n_exits != data.n_exits:
        raise ValueError(f"threshold_curve needs at least two exits and a CostTable for each. Got {data.n_exits} exits "
                         f"and a CostTable for {costs.n_exits}.")
    if n_points < 2:
        raise ValueError(f"threshold_curve needs n_points >= 2. Got {n_points} instead.")
    out = Outcomes(policy, data, costs)
    pooled = out.sureness[:-1].flatten().double()
    grid = torch.quantile(pooled, torch.linspace(0, 1, n_points, dtype=torch.float64)).tolist() + [math.inf]
    points = [out.accuracy_cost(torch.full((data.n_exits - 1,), t)) for t in grid]
    return ExitCurve(flops=tuple(c * costs.full for _, c in points), accuracy=tuple(a for a, _ in points), thresholds=tuple(grid))


def curve_area(flops: Sequence[float], accuracy: Sequence[float], low: float, high: float) -> float:
    """Mean accuracy over ``[low, high]`` of the piecewise-linear curve through ``(flops, accuracy)``:
    ``(1 / (high - low)) * integral_low^high acc(c) dc``. Points of equal cost are averaged; the range must
    lie inside the curve's."""
    x, y = np.asarray(flops, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"curve_area needs as many costs as accuracies, at least two. Got {x.shape} and {y.shape}.")
    if not low < high:
        raise ValueError(f"curve_area needs low < high. Got low={low} and high={high} instead.")
    xs, inverse = np.unique(x, return_inverse=True)
    ys = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if low < xs[0] - 1e-9 * abs(xs[0]) or high > xs[-1] + 1e-9 * abs(xs[-1]):
        raise ValueError(f"curve_area's range [{low}, {high}] leaves the curve's costs [{xs[0]}, {xs[-1]}]; "
                         "take a range every curve covers (common_range).")
    inside = (xs > low) & (xs < high)
    cx = np.concatenate([[low], xs[inside], [high]])
    cy = np.interp(cx, xs, ys)
    return float(np.sum((cx[1:] - cx[:-1]) * (cy[1:] + cy[:-1]) / 2) / (high - low))


def common_range(curves: Sequence[ExitCurve]) -> tuple[float, float]:
    """``(max of the curves' lowest costs, min of their highest)``: the FLOPs range every curve covers."""
    if not curves:
        raise ValueError("common_range needs at least one curve.")
    low, high = max(min(c.flops) for c in curves), min(max(c.flops) for c in curves)
    if not low < high:
        raise ValueError(f"The curves share no range of costs (lowest common {low}, highest common {high}).")
    return low, high
