"""Threshold calibration on the validation split: frontier sweep, target accuracy, cost budget, shared threshold.

Every function takes the validation ``ExitLogits`` first, refuses a test split,
fits a learnable policy on it if it is not fitted yet, and returns frozen
:class:`Thresholds`. Accuracies and drops are fractions (0.005 = 0.5 pt);
costs are relative to the full network (``CostTable.full``).

Example:
    >>> from locallearn.exits.synthetic import synthetic_exit_logits
    >>> val = synthetic_exit_logits(n_samples=200, seed=0)
    >>> th = for_target_accuracy(val, "max-prob", max_drop=0.01)
    >>> th.details["accuracy"] >= th.details["last_exit_accuracy"] - 0.01
    True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from .._params import check_number
from .cache import ExitLogits
from .cost import CostTable
from .policies import EXIT_POLICIES, ExitPolicy, refuse_test_split
from .thresholds import Outcomes, Thresholds


def prepare(val: ExitLogits, policy: str | ExitPolicy, costs: CostTable | None, *, what: str) -> tuple[ExitPolicy, Outcomes]:
    """Refuse test data, build and fit the policy, check the cost table; precompute outcomes."""
    refuse_test_split(val, what=what)
    policy = EXIT_POLICIES.create(policy)
    if not policy.is_fitted:
        policy.fit(val)
    if costs is not None and costs.n_exits != val.n_exits:
        raise ValueError(f"{what} got a CostTable for {costs.n_exits} exits. Expected {val.n_exits}, as in the logits.")
    return policy, Outcomes(policy, val, costs)


@dataclasses.dataclass(frozen=True)
class Frontier:
    """Accuracy-cost points on the validation split, from the full network down to the cheapest."""

    policy: ExitPolicy
    thresholds: list[torch.Tensor]
    accuracy: list[float]
    relative_cost: list[float]
    last_exit_accuracy: float
    val: ExitLogits = dataclasses.field(repr=False)

    def at(self, i: int, method: str = "sweep") -> Thresholds:
        """Point ``i`` as frozen thresholds."""
        return Thresholds.calibrated(
            self.policy, self.thresholds[i].tolist(), self.val, method,
            accuracy=self.accuracy[i], relative_cost=self.relative_cost[i], last_exit_accuracy=self.last_exit_accuracy,
        )

    def target(self, max_drop: float = 0.005) -> Thresholds:
        """The cheapest point whose accuracy is within ``max_drop`` (a fraction) of the last exit's.

        If no point qualifies (possible for pooled policies), the most accurate one is returned with
        ``details["met"] = False``.
        """
        if not 0 <= max_drop <= 1:
            raise ValueError(f"A target accuracy needs max_drop as a fraction in [0, 1] (0.005 = 0.5 pt). Got {max_drop!r} instead.")
        goal = self.last_exit_accuracy - max_drop
        ok = [i for i, a in enumerate(self.accuracy) if a >= goal - 1e-12]
        if ok:
            best = min(ok, key=lambda i: (self.relative_cost[i], -self.accuracy[i]))
        else:
            best = int(np.argmax(self.accuracy))
        th = self.at(best, method="target-accuracy")
        th.details.update(max_drop=max_drop, met=bool(ok))
        return th


def sweep(val: ExitLogits, policy: str | ExitPolicy = "entropy", costs: CostTable | None = None, *, n_grid: int = 40) -> Frontier:
    """Greedy per-exit frontier: start with no early exit; at each step lower one exit's threshold
    by one quantile step (of that exit's validation sureness), choosing the step that loses the least
    accuracy per unit of cost saved; record every point."""
    policy, out = prepare(val, policy, costs, what="sweep")
    levels = torch.linspace(1.0, 0.0, n_grid + 1)[1:]
    grids = [torch.cat([torch.tensor([math.inf]), torch.quantile(out.sureness[k].double(), levels.double()).float()])
             for k in range(val.n_exits - 1)]
    position = [0] * (val.n_exits - 1)
    current = torch.full((val.n_exits - 1,), math.inf)
    accuracy, cost = out.accuracy_cost(current)
    thresholds, accuracies, costs_seen = [current.clone()], [accuracy], [cost]
    while any(p < n_grid for p in position):
        best = None
        for k, p in enumerate(position):
            if p == n_grid:
                continue
            trial = current.clone()
            trial[k] = grids[k][p + 1]
            a, c = out.accuracy_cost(trial)
            saved, lost = cost - c, accuracy - a
            key = (lost / saved) if saved > 1e-12 else (-math.inf if lost <= 0 else math.inf)
            if best is None or key < best[0]:
                best = (key, k, trial, a, c)
        _, k, current, accuracy, cost = best
        position[k] += 1
        thresholds.append(current.clone())
        accuracies.append(accuracy)
        costs_seen.append(cost)
    last = float(out.last_correct.double().mean())
    return Frontier(policy, thresholds, accuracies, costs_seen, last, val)


def for_target_accuracy(
    val: ExitLogits, policy: str | ExitPolicy = "entropy", costs: CostTable | None = None, *, max_drop: float = 0.005, n_grid: int = 40
) -> Thresholds:
    """The cheapest :func:`sweep` point whose validation accuracy is within ``max_drop`` of the last exit's."""
    return sweep(val, policy, costs, n_grid=n_grid).target(max_drop)


def for_latency_budget(
    val: ExitLogits, policy: str | ExitPolicy = "max-prob", costs: CostTable | None = None, *, budget: float, n_grid: int = 40
) -> Thresholds:
    """The most accurate :func:`sweep` point whose expected cost per sample (eq. 12, in the table's own unit:
    seconds for a latency or multi-tier table) is at most ``budget``."""
    if not isinstance(costs, CostTable):
        raise TypeError(f"for_latency_budget needs a CostTable (e.g. a latency table in seconds). Got {type(costs).__name__} instead.")
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not budget > 0:
        raise ValueError(f"The 'budget' parameter of for_latency_budget must be a float > 0 ({costs.unit} per sample). Got {budget!r} instead.")
    frontier = sweep(val, policy, costs, n_grid=n_grid)
    ok = [i for i, c in enumerate(frontier.relative_cost) if c * costs.full <= budget * (1 + 1e-9)]
    if not ok:
        cheapest = min(frontier.relative_cost) * costs.full
        raise ValueError(
            f"for_latency_budget cannot meet a budget of {budget:.4g} {costs.unit} per sample: the cheapest point "
            f"on split {val.split!r} costs {cheapest:.4g} {costs.unit}."
        )
    best = max(ok, key=lambda i: (frontier.accuracy[i], -frontier.relative_cost[i]))
    th = frontier.at(best, method="latency-budget")
    th.details.update(budget=budget, unit=costs.unit, expected_cost=frontier.relative_cost[best] * costs.full)
    return th


def budget_proportions(p: float, n_exits: int) -> torch.Tensor:
    """MSDNet's budgeted batch setting: exit proportions ``q_k ∝ p^k``."""
    check_number(n_exits, name="n_exits", owner="budget_proportions", low=1, integer=True)
    if not math.isfinite(check_number(p, name="p", owner="budget_proportions", low=0, low_inclusive=False)):
        raise ValueError(f"The 'p' parameter of budget_proportions must be a finite float > 0. Got {p!r} instead.")
    q = torch.tensor([p**k for k in range(n_exits)], dtype=torch.float64)
    return q / q.sum()


def for_budget(val: ExitLogits, policy: str | ExitPolicy = "max-prob", costs: CostTable | None = None, *, budget: float) -> Thresholds:
    """Thresholds that spend ``budget`` (relative cost) on average: find ``p`` with
    ``sum_k q_k C_k / C_full = budget`` (bisection on ``log p``), then at each exit in turn set the
    threshold to the sureness quantile that lets ``q_k * N`` of the remaining samples leave."""
    policy, out = prepare(val, policy, costs, what="for_budget")
    relative = (out.cumulative / out.costs.full).double()
    low, high = float(relative[0]), float(relative[-1])
    if not low <= budget <= high:
        raise ValueError(f"for_budget needs a relative budget between {low:.4g} (all leave at exit 0) and {high:.4g} (none leave early). Got {budget!r} instead.")
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        spent = float((budget_proportions(math.exp(mid), val.n_exits) * relative).sum())
        lo, hi = (mid, hi) if spent < budget else (lo, mid)
    proportions = budget_proportions(math.exp((lo + hi) / 2), val.n_exits)
    remaining = torch.ones(val.n_samples, dtype=torch.bool)
    values = []
    for k in range(val.n_exits - 1):
        n_leave = int(round(float(proportions[k]) * val.n_samples))
        scores = out.sureness[k][remaining]
        if n_leave == 0 or scores.numel() == 0:
            values.append(math.inf)
            continue
        t = float(scores.sort(descending=True).values[min(n_leave, scores.numel()) - 1])
        values.append(t)
        remaining &= out.sureness[k] < t
    accuracy, cost = out.accuracy_cost(torch.tensor(values))
    return Thresholds.calibrated(policy, values, val, "budget", budget=budget, proportions=proportions.tolist(), accuracy=accuracy, relative_cost=cost)


def shared_threshold(
    val: ExitLogits, policy: str | ExitPolicy = "max-prob", costs: CostTable | None = None, *, accuracy: float, n_grid: int = 200
) -> Thresholds:
    """One threshold for every exit, raised step by step (quantiles of the pooled validation sureness)
    until the validation accuracy reaches ``accuracy``; the first, cheapest such threshold is returned."""
    policy, out = prepare(val, policy, costs, what="shared_threshold")
    if not 0 <= accuracy <= 1:
        raise ValueError(f"shared_threshold needs accuracy as a fraction in [0, 1]. Got {accuracy!r} instead.")
    pooled = out.sureness[:-1].flatten().double()
    candidates = torch.quantile(pooled, torch.linspace(0, 1, n_grid, dtype=torch.float64)).float().tolist() + [math.inf]
    for t in candidates:
        reached, cost = out.accuracy_cost(torch.full((val.n_exits - 1,), t))
        if reached >= accuracy:
            return Thresholds.calibrated(policy, [t] * (val.n_exits - 1), val, "shared", accuracy=reached, relative_cost=cost)
    raise ValueError(f"shared_threshold cannot reach accuracy {accuracy} on split {val.split!r}: the best is {reached:.4f} (no early exit).")
