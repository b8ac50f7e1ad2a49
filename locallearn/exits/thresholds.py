"""Frozen thresholds that remember what they were calibrated on, and ``evaluate`` that enforces it.

Two locks keep test data out of calibration:

1. every fitting / calibration function refuses an ``ExitLogits`` whose split is
   named "test" (see ``refuse_test_split``);
2. a calibrated :class:`Thresholds` stores a fingerprint of every calibration row,
   and :func:`evaluate` refuses a split (other than the calibration split itself)
   that shares any row with it, so relabelling the test split as "val" does not help.

Example:
    >>> import torch
    >>> from locallearn.exits import ExitLogits
    >>> test = ExitLogits(torch.tensor([[[3.0, 0.0]], [[0.0, 3.0]]]), torch.tensor([0]), "test")
    >>> result = evaluate(test, Thresholds.fixed("max-prob", [0.9]))
    >>> result.accuracy, result.exit_fractions.tolist()
    (1.0, [1.0, 0.0])
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from .cache import ExitLogits
from .cost import CostTable, exit_fractions, per_sample_cost
from .policies import EXIT_POLICIES, ExitPolicy
from .policies.base import first_exit


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Per-exit thresholds ``t_0..t_{K-2}`` for ``policy`` (sureness units; ``inf`` = never exit there)."""

    policy: ExitPolicy
    values: tuple[float, ...]
    calibrated_on: str
    method: str
    seen_rows: np.ndarray = dataclasses.field(repr=False, compare=False)
    details: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.policy.check_thresholds(self.values)

    @classmethod
    def fixed(cls, policy: str | ExitPolicy, values: Sequence[float]) -> Thresholds:
        """Hand-set thresholds (calibrated on nothing)."""
        return cls(EXIT_POLICIES.create(policy), tuple(float(v) for v in values), "none", "fixed", np.empty(0, np.uint64))

    @classmethod
    def calibrated(cls, policy: ExitPolicy, values: Sequence[float], val: ExitLogits, method: str, **details: Any) -> Thresholds:
        """Thresholds calibrated on ``val``, remembering its rows."""
        return cls(policy, tuple(float(v) for v in values), val.split, method, np.sort(val.row_keys()), details)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Outcome of a policy with thresholds on one split."""

    split: str
    exit: torch.Tensor
    prediction: torch.Tensor
    labels: torch.Tensor
    accuracy: float
    last_exit_accuracy: float
    exit_fractions: torch.Tensor
    mean_cost: float | None
    relative_cost: float | None


class Outcomes:
    """Everything a threshold search needs, computed once: sureness, correctness, costs."""

    def __init__(self, policy: ExitPolicy, data: ExitLogits, costs: CostTable | None) -> None:
        self.sureness = policy.sureness(data.logits)
        self.correct = policy.outputs(data.logits).argmax(-1) == data.labels
        self.last_correct = data.logits[-1].argmax(-1) == data.labels
        self.costs = costs or CostTable.uniform(data.n_exits)
        self.cumulative = self.costs.cumulative
        self.columns = torch.arange(data.n_samples)

    def accuracy_cost(self, thresholds: torch.Tensor) -> tuple[float, float]:
        """Accuracy and cost relative to the full network."""
        exit_index = first_exit(self.sureness, thresholds)
        accuracy = float(self.correct[exit_index, self.columns].double().mean())
        return accuracy, float(self.cumulative[exit_index].mean()) / self.costs.full


def evaluate(data: ExitLogits, thresholds: Thresholds, costs: CostTable | None = None) -> Evaluation:
    """Run the policy with its thresholds on ``data`` (the one place the test split goes)."""
    if not isinstance(thresholds, Thresholds):
        raise TypeError(f"evaluate needs a Thresholds object (from a calibration function). Got {type(thresholds).__name__} instead.")
    if data.split != thresholds.calibrated_on and thresholds.seen_rows.size:
        overlap = int(np.isin(data.row_keys(), thresholds.seen_rows).sum())
        if overlap:
            raise ValueError(
                f"evaluate got {overlap} rows of split {data.split!r} that were used to calibrate these thresholds "
                f"(on split {thresholds.calibrated_on!r}). Evaluate on data the calibration never saw."
            )
    decision = thresholds.policy.decide(data.logits, thresholds.values)
    mean_cost = relative = None
    if costs is not None:
        if costs.n_exits != data.n_exits:
            raise ValueError(f"evaluate got a CostTable for {costs.n_exits} exits. Expected {data.n_exits}, as in the logits.")
        mean_cost = float(per_sample_cost(decision.exit, costs).mean())
        relative = mean_cost / costs.full
    return Evaluation(
        split=data.split,
        exit=decision.exit,
        prediction=decision.prediction,
        labels=data.labels,
        accuracy=float((decision.prediction == data.labels).double().mean()),
        last_exit_accuracy=float((data.logits[-1].argmax(-1) == data.labels).double().mean()),
        exit_fractions=exit_fractions(decision.exit, data.n_exits),
        mean_cost=mean_cost,
        relative_cost=relative,
    )
