"""Combined outputs: the prediction at exit k pools the probabilities of exits 0..k.

* ``avg-pool``: ``q_k = mean_{j<=k} p_j``;
* ``max-pool``: ``q_k = normalise(max_{j<=k} p_j)`` (element-wise max, renormalised);
* ``weighted`` (survey eq. 8): ``q_k = sum_{j<=k} w_j p_j / sum_{j<=k} w_j`` with
  ``w = softmax(a)`` learned on validation logits by minimising
  ``mean_k NLL(q_k, y)``; at the last exit this is the learned weighted average
  of all exits.

The exit decision uses a confidence of ``q_k`` (``confidence=``: "max-prob",
"entropy" or "margin"); ``outputs`` returns ``log q_k``.

Example:
    >>> import torch
    >>> logits = torch.log(torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]]))
    >>> AvgPoolPolicy().outputs(logits).exp()[1].tolist()
    [[0.5, 0.5]]
"""

from __future__ import annotations

import torch

from ..._params import check_choice, check_number
from ..cache import ExitLogits
from ..confidence import SURENESS
from .base import EXIT_POLICIES, ExitPolicy


class _PooledPolicy(ExitPolicy):
    def __init__(self, *, confidence: str = "max-prob") -> None:
        self.confidence = check_choice(confidence, name="confidence", owner=type(self).__name__, choices=SURENESS)

    def pooled(self, probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log(self.pooled(torch.softmax(logits, -1)).clamp_min(1e-12))

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        return SURENESS[self.confidence](self.outputs(logits))


@EXIT_POLICIES.register("avg-pool")
class AvgPoolPolicy(_PooledPolicy):
    """Running mean of the exits' probabilities.

    Source: no single paper: the running mean of the exits' probabilities (the survey's eq. 8 with equal weights).
    """

    source = "no single paper: the running mean of the exits' probabilities (the survey's eq. 8 with equal weights)"

    def pooled(self, probs: torch.Tensor) -> torch.Tensor:
        counts = torch.arange(1, probs.shape[0] + 1, dtype=probs.dtype)
        return probs.cumsum(0) / counts[:, None, None]


@EXIT_POLICIES.register("max-pool")
class MaxPoolPolicy(_PooledPolicy):
    """Running element-wise max of the exits' probabilities, renormalised.

    Source: no single paper: the running element-wise max of the exits' probabilities, renormalised (a pooling the survey lists beside eq. 8).
    """

    source = "no single paper: the running element-wise max of the exits' probabilities, renormalised (a pooling the survey lists beside eq. 8)"

    def pooled(self, probs: torch.Tensor) -> torch.Tensor:
        running = probs.cummax(0).values
        return running / running.sum(-1, keepdim=True)


@EXIT_POLICIES.register("weighted")
class WeightedPolicy(_PooledPolicy):
    """Learned weighted average of the exits (survey eq. 8).

    Source: the early-exit survey's eq. 8 (learned weights over exits); learned ensembling of exits as in Wołczyk et al., NeurIPS 2021 (Zero Time Waste).
    """

    source = "the early-exit survey's eq. 8 (learned weights over exits); learned ensembling of exits as in Wołczyk et al., NeurIPS 2021 (Zero Time Waste)"

    learnable = True

    def __init__(self, *, confidence: str = "max-prob", steps: int = 200, lr: float = 0.05) -> None:
        super().__init__(confidence=confidence)
        self.steps = check_number(steps, name="steps", owner=type(self).__name__, low=1, integer=True)
        self.lr = check_number(lr, name="lr", owner=type(self).__name__, low=0.0, low_inclusive=False)
        self.weights: torch.Tensor | None = None

    @property
    def is_fitted(self) -> bool:
        return self.weights is not None

    def _pool(self, probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        w = weights[: probs.shape[0], None, None]
        return (w * probs).cumsum(0) / w.cumsum(0)

    def pooled(self, probs: torch.Tensor) -> torch.Tensor:
        self.check_fitted(None if self.weights is None else len(self.weights), probs.shape[0])
        return self._pool(probs, self.weights)

    def fit(self, val: ExitLogits) -> WeightedPolicy:
        super().fit(val)
        probs = torch.softmax(val.logits, -1)
        a = torch.zeros(val.n_exits, requires_grad=True)
        optimiser = torch.optim.Adam([a], lr=self.lr)
        for _ in range(self.steps):
            optimiser.zero_grad()
            q = self._pool(probs, torch.softmax(a, 0))
            picked = q.gather(-1, val.labels.expand(val.n_exits, -1)[..., None]).squeeze(-1)
            loss = -picked.clamp_min(1e-12).log().mean()
            loss.backward()
            optimiser.step()
        self.weights = torch.softmax(a.detach(), 0)
        return self
