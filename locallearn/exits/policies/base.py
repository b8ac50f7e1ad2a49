"""The exit-policy contract, the shared registry and the guard against calibrating on test data.

A policy maps per-exit logits ``[K, N, C]`` to a causal *sureness* ``[K, N]``
(higher = surer; the value at exit k uses exits 0..k only) and to the outputs
whose argmax is the prediction at each exit. Given thresholds ``t_0..t_{K-2}``,
a sample leaves at the first exit k < K-1 with ``sureness_k >= t_k``, else at
the last exit. Because sureness is causal, the online runner, which sees only
the exits run so far, takes the same decisions as :meth:`ExitPolicy.decide`.

Example:
    >>> import torch
    >>> policy = EXIT_POLICIES.create("max-prob")
    >>> logits = torch.tensor([[[4.0, 0.0]], [[0.0, 4.0]]])   # 2 exits, 1 sample, 2 classes
    >>> decision = policy.decide(logits, [0.9])
    >>> decision.exit.tolist(), decision.prediction.tolist()
    ([0], [0])
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch

from ..._params import get_params
from ..._registry import Registry
from ..cache import ExitLogits

EXIT_POLICIES: Registry = Registry("exit policy", group="locallearn.policies")

#: How far outside the sureness range a threshold may lie by float rounding (a calibrated quantile).
ROUNDING = 1e-5


def refuse_test_split(data: ExitLogits, *, what: str) -> ExitLogits:
    """Raise if ``data`` is a test split; every fitting and calibration step calls this."""
    if not isinstance(data, ExitLogits):
        raise TypeError(f"{what} needs an ExitLogits of the validation split. Got {type(data).__name__} instead.")
    if data.split.strip().lower().startswith("test"):
        raise ValueError(
            f"{what} must never see test data: got an ExitLogits with split={data.split!r}. "
            "Fit and calibrate on the validation split; pass the test split only to evaluate()."
        )
    if data.n_samples == 0:
        raise ValueError(
            f"{what} got an ExitLogits of split {data.split!r} with no rows: nothing to fit or calibrate on. A recipe "
            "that trains on every training image (val_size=0) has no validation split; hold one out (val_size > 0) "
            "to calibrate exits."
        )
    return data


@dataclasses.dataclass(frozen=True)
class ExitDecision:
    """Where each sample left (``exit``, in 0..K-1) and what it predicted there."""

    exit: torch.Tensor
    prediction: torch.Tensor


class ExitPolicy:
    """Base class: subclasses define :meth:`sureness` and, if they combine exits, :meth:`outputs`."""

    name: str = "base"
    #: True when :meth:`fit` learns parameters from validation logits.
    learnable: bool = False
    #: The values sureness takes; a threshold outside them (other than ``inf``) routes every sample alike.
    sureness_range: tuple[float, float] = (0.0, 1.0)

    @property
    def is_fitted(self) -> bool:
        """Whether the policy is ready to score (always, unless ``learnable`` and not yet fitted)."""
        return True

    def fit(self, val: ExitLogits) -> ExitPolicy:
        """Learn parameters from validation logits (a no-op unless ``learnable``)."""
        refuse_test_split(val, what=f"{type(self).__name__}.fit")
        return self

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]`` scores whose argmax is the prediction at each exit (causal)."""
        return logits

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, N]`` causal confidence, higher = surer."""
        raise NotImplementedError

    def last_sureness(self, history: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sureness at the newest exit, from the ``[N, C]`` logits of exits 0..k (used by the runner)."""
        return self.sureness(torch.stack(list(history)))[-1]

    def last_outputs(self, history: Sequence[torch.Tensor]) -> torch.Tensor:
        """Outputs at the newest exit, from the ``[N, C]`` logits of exits 0..k (used by the runner)."""
        return self.outputs(torch.stack(list(history)))[-1]

    def check_thresholds(self, thresholds: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """``thresholds`` as a flat float tensor, refused if one is NaN or outside :attr:`sureness_range`
        (``inf``, never exit there, is always allowed).

        Example:
            >>> EXIT_POLICIES.create("max-prob").check_thresholds([0.9, float("nan")])
            Traceback (most recent call last):
            ...
            ValueError: The 'thresholds' parameter of MaxProbPolicy must be floats in [0.0, 1.0] or inf (never exit there). Got threshold 1 = nan instead.
        """
        t = torch.as_tensor(thresholds, dtype=torch.float32).flatten()
        low, high = self.sureness_range
        outside = (t < low - ROUNDING) | (t > high + ROUNDING)
        bad = (t.isnan() | outside) & (t != math.inf)
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(
                f"The 'thresholds' parameter of {type(self).__name__} must be floats in [{low}, {high}] or inf "
                f"(never exit there). Got threshold {k} = {float(t[k])} instead."
            )
        return t

    def grid(self, n_exits: int) -> torch.Tensor:
        """Data-independent candidate thresholds, from the most cautious down (for risk control)."""
        return torch.linspace(1.0, 0.0, 101)

    def decide(self, logits: torch.Tensor, thresholds: Sequence[float] | torch.Tensor) -> ExitDecision:
        """Exit index and prediction per sample for thresholds ``t_0..t_{K-2}``."""
        logits = _check_logits(logits)
        k = logits.shape[0]
        t = self.check_thresholds(thresholds)
        if t.numel() != k - 1:
            raise ValueError(
                f"{type(self).__name__}.decide needs {k - 1} thresholds (one per exit but the last) "
                f"for logits with {k} exits. Got {t.numel()} instead."
            )
        return decide_from(self.sureness(logits), self.outputs(logits), t)

    def check_fitted(self, fitted_exits: int | None, n_exits: int) -> None:
        """Raise unless the policy was fitted (``fitted_exits`` is not ``None``) for at least ``n_exits`` exits."""
        name = type(self).__name__
        if fitted_exits is None:
            raise RuntimeError(f"{name} must be fitted on validation logits first: call .fit(val).")
        if n_exits > fitted_exits:
            raise ValueError(f"{name} was fitted for {fitted_exits} exits. Got logits with {n_exits} exits instead.")

    def get_params(self) -> dict:
        """The keyword-only hyper-parameters, read back for logging."""
        return get_params(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def first_exit(sureness: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Per sample, the first exit k < K-1 with ``sureness_k >= t_k``, else K-1."""
    exit_index = torch.full(sureness.shape[1:], sureness.shape[0] - 1, dtype=torch.long)
    for k in range(sureness.shape[0] - 2, -1, -1):
        exit_index = torch.where(sureness[k] >= float(thresholds[k]), k, exit_index)
    return exit_index


def decide_from(sureness: torch.Tensor, outputs: torch.Tensor, thresholds: torch.Tensor) -> ExitDecision:
    """Exit index and the prediction of ``outputs`` there."""
    exit_index = first_exit(sureness, thresholds)
    columns = torch.arange(sureness.shape[1])
    return ExitDecision(exit_index, outputs.argmax(-1)[exit_index, columns])


def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"Exit logits must be a tensor of shape [exits, samples, classes]. Got {got} instead.")
    return logits
