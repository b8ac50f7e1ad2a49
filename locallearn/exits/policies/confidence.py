"""One-exit confidence policies: normalised entropy, max probability, top-two margin.

Example:
    >>> import torch
    >>> logits = torch.tensor([[[3.0, 0.0], [0.1, 0.0]], [[0.0, 3.0], [0.0, 3.0]]])
    >>> EntropyPolicy().decide(logits, [0.5]).exit.tolist()   # exit 0 when H/log C <= 0.5
    [0, 1]
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..confidence import entropy_sureness, max_probability, top2_margin
from .base import EXIT_POLICIES, ExitPolicy


class _OneExitPolicy(ExitPolicy):
    """Sureness and outputs of exit k depend on exit k alone, so the runner skips the history."""

    def last_sureness(self, history: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.sureness(history[-1][None])[0]

    def last_outputs(self, history: Sequence[torch.Tensor]) -> torch.Tensor:
        return history[-1]


@EXIT_POLICIES.register("entropy")
class EntropyPolicy(_OneExitPolicy):
    """BranchyNet / survey eq. 11: exit at k when ``H(p_k)/log(C) <= T_k``.

    Thresholds are stored as sureness ``t_k = 1 - T_k`` (exit when ``1 - H/log C >= t_k``).

    Source: Teerapittayanon, McDanel & Kung, ICPR 2016 (BranchyNet; kunglab/branchynet).
    """

    source = 'Teerapittayanon, McDanel & Kung, ICPR 2016 (BranchyNet; kunglab/branchynet)'

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        return entropy_sureness(logits)


@EXIT_POLICIES.register("max-prob")
class MaxProbPolicy(_OneExitPolicy):
    """Shallow-Deep Networks: exit at k when ``max_c p_k[c] >= q_k``.

    Source: Kaya, Hong & Dumitras, ICML 2019 (Shallow-Deep Networks; yigitcankaya/Shallow-Deep-Networks).
    """

    source = 'Kaya, Hong & Dumitras, ICML 2019 (Shallow-Deep Networks; yigitcankaya/Shallow-Deep-Networks)'

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        return max_probability(logits)


@EXIT_POLICIES.register("margin")
class MarginPolicy(_OneExitPolicy):
    """Exit at k when the gap between the two largest probabilities ``>= m_k``.

    Source: Park, Kim, Kim, Kim, Kim, Yoon & Yoo, CODES+ISSS 2015, 'Big/little deep neural network for ultra low power inference' (doi:10.1109/CODESISSS.2015.7331375: the little net's score margin, top-1 minus top-2, decides whether the big one runs).
    """

    source = "Park, Kim, Kim, Kim, Kim, Yoon & Yoo, CODES+ISSS 2015, 'Big/little deep neural network for ultra low power inference' (doi:10.1109/CODESISSS.2015.7331375: the little net's score margin, top-1 minus top-2, decides whether the big one runs)"

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        return top2_margin(logits)
