"""Patience: stop once the prediction has not changed for ``p`` consecutive exits.

Sureness at exit k is the run length ``r_k``: ``r_0 = 0`` and
``r_k = r_{k-1} + 1`` if ``argmax z_k == argmax z_{k-1}`` else 0. With threshold
``p`` at every exit, a sample leaves at the first k where the last ``p + 1``
exits agreed.

Example:
    >>> import torch
    >>> a, b = [2.0, 0.0], [0.0, 2.0]
    >>> logits = torch.tensor([[a, a], [a, b], [a, b], [b, b]])   # 4 exits, 2 samples
    >>> PatiencePolicy().sureness(logits).tolist()
    [[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [0.0, 2.0]]
    >>> PatiencePolicy().decide(logits, [2, 2, 2]).exit.tolist()
    [2, 3]
"""

from __future__ import annotations

import math

import torch

from .base import EXIT_POLICIES, ExitPolicy


@EXIT_POLICIES.register("patience")
class PatiencePolicy(ExitPolicy):
    """Thresholds are patience counts (a shared ``p`` is ``[p] * (K - 1)``).

    Source: Zhou, Xu, Ge, McAuley, Xu & Wei, NeurIPS 2020 (PABEE; JetRunner/PABEE).
    """

    source = 'Zhou, Xu, Ge, McAuley, Xu & Wei, NeurIPS 2020 (PABEE; JetRunner/PABEE)'

    sureness_range = (0.0, math.inf)

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        prediction = logits.argmax(-1)
        run = torch.zeros(prediction.shape, dtype=torch.float32)
        for k in range(1, prediction.shape[0]):
            run[k] = torch.where(prediction[k] == prediction[k - 1], run[k - 1] + 1, 0.0)
        return run

    def grid(self, n_exits: int) -> torch.Tensor:
        return torch.arange(n_exits - 1, 0, -1, dtype=torch.float32)
