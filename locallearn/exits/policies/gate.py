"""Learned gate (survey eq. 9): a small trainable confidence head per exit.

Gate k reads features of exit k's logits, ``f_k = [top-m sorted softmax
probabilities, H(p_k)/log C, 1[argmax z_k == argmax z_{k-1}]]`` (the last term
is 0 at exit 0, so the gate stays causal), and outputs
``g_k = sigmoid(MLP_k(f_k))``, trained with binary cross-entropy to predict
"exit k is correct" on validation logits. A sample exits at k when ``g_k >= t_k``.

Example:
    >>> import torch
    >>> from locallearn.exits import ExitLogits
    >>> g = torch.Generator().manual_seed(0)
    >>> val = ExitLogits(torch.randn(3, 64, 4, generator=g), torch.randint(0, 4, (64,), generator=g), "val")
    >>> gate = LearnedGatePolicy(steps=20).fit(val)
    >>> gate.sureness(val.logits).shape
    torch.Size([3, 64])
"""

from __future__ import annotations

import torch
from torch import nn

from ..._params import check_number
from ..cache import ExitLogits
from ..confidence import normalised_entropy
from .base import EXIT_POLICIES, ExitPolicy


@EXIT_POLICIES.register("gate")
class LearnedGatePolicy(ExitPolicy):
    """One ``features -> hidden -> 1`` MLP per exit, fitted on validation logits.

    Source: the early-exit survey's learned gate (eq. 9); a trained exit decision as in Bolukbasi, Wang, Dekel & Saligrama, ICML 2017, 'Adaptive Neural Networks for Efficient Inference' (arXiv:1702.07811: a per-layer exit policy learned as weighted binary classification; here a small MLP per exit fitted by binary cross-entropy to 'this exit is right'); no authors' code.
    """

    source = "the early-exit survey's learned gate (eq. 9); a trained exit decision as in Bolukbasi, Wang, Dekel & Saligrama, ICML 2017, 'Adaptive Neural Networks for Efficient Inference' (arXiv:1702.07811: a per-layer exit policy learned as weighted binary classification; here a small MLP per exit fitted by binary cross-entropy to 'this exit is right'); no authors' code"

    learnable = True

    def __init__(
        self, *, hidden: int = 16, top: int = 3, steps: int = 300, lr: float = 0.01, weight_decay: float = 1e-4, seed: int = 0
    ) -> None:
        owner = type(self).__name__
        self.hidden = check_number(hidden, name="hidden", owner=owner, low=1, integer=True)
        self.top = check_number(top, name="top", owner=owner, low=1, integer=True)
        self.steps = check_number(steps, name="steps", owner=owner, low=1, integer=True)
        self.lr = check_number(lr, name="lr", owner=owner, low=0.0, low_inclusive=False)
        self.weight_decay = check_number(weight_decay, name="weight_decay", owner=owner, low=0.0)
        self.seed = check_number(seed, name="seed", owner=owner, integer=True)
        self.gates: nn.ModuleList | None = None

    @property
    def is_fitted(self) -> bool:
        return self.gates is not None

    def features(self, logits: torch.Tensor) -> torch.Tensor:
        """``[K, N, top + 2]`` gate inputs (see the module docstring)."""
        probs = torch.softmax(logits, -1)
        m = min(self.top, logits.shape[-1])
        prediction = logits.argmax(-1)
        agree = torch.zeros(prediction.shape)
        agree[1:] = (prediction[1:] == prediction[:-1]).float()
        return torch.cat([probs.topk(m, -1).values, normalised_entropy(logits)[..., None], agree[..., None]], -1)

    def fit(self, val: ExitLogits) -> LearnedGatePolicy:
        super().fit(val)
        torch.manual_seed(self.seed)
        x = self.features(val.logits)
        y = (val.logits.argmax(-1) == val.labels).float()
        self.gates = nn.ModuleList(
            nn.Sequential(nn.Linear(x.shape[-1], self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1)) for _ in range(x.shape[0])
        )
        optimiser = torch.optim.Adam(self.gates.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        for _ in range(self.steps):
            optimiser.zero_grad()
            loss = sum(loss_fn(gate(x[k]).squeeze(-1), y[k]) for k, gate in enumerate(self.gates))
            loss.backward()
            optimiser.step()
        self.gates.eval()
        return self

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_fitted(None if self.gates is None else len(self.gates), logits.shape[0])
        x = self.features(logits)
        with torch.no_grad():
            return torch.stack([torch.sigmoid(self.gates[k](x[k]).squeeze(-1)) for k in range(x.shape[0])])
