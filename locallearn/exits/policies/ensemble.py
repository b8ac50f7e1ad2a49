"""Zero Time Waste's geometric ensemble of exits (Wołczyk et al., NeurIPS 2021; authors' code
gmum/Zero-Time-Waste, ``ztw_cv_original/architectures/weighted_avg_model.py``, ``ensemble_mode="geometric"``).

The output at exit m combines the log-probabilities of exits ``0..m`` with learned per-exit weights
``w_{m,i}`` and a per-class bias ``b_m``:

    log q_m = (1 / (m + 1)) sum_{i <= m} exp(w_{m,i}) log p_i + b_m,

i.e. ``q_m(y) ∝ exp(b_{m,y}) prod_{i <= m} p_i(y) ^ (exp(w_{m,i}) / (m + 1))``, a weighted geometric mean
of the exits' probabilities (the exponent keeps every weight positive). As the authors' code: one
ensemble per exit, the last included; ``w ~ N(0, 0.01^2)``, ``b = 0`` at the start; each trained alone
(the ensembles share no parameter) by Adam with learning rate 5e-4 on the cross-entropy of
``softmax(log q_m)``, in shuffled batches of 512 for 501 epochs, on the **training** split's exit
logits (their ``--run_ensb_dataset train`` default; ``fit`` takes any split but a test split). The
authors' optional penalty on the spread of the weights (``--alpha``, 0 in their scripts) is not offered.

A sample leaves at exit m when a confidence of ``q_m`` (``confidence=``, max-prob by default, as ZTW)
reaches the threshold; ``outputs`` returns ``log q_m`` (unnormalised), so the prediction there is
``argmax q_m``.

Example:
    >>> from locallearn.exits.synthetic import synthetic_exit_logits
    >>> train = synthetic_exit_logits(n_samples=200, seed=0, split="train")
    >>> policy = GeometricEnsemblePolicy(epochs=5).fit(train)
    >>> policy.outputs(train.logits).shape, policy.weights.shape
    (torch.Size([3, 200, 10]), torch.Size([3, 3]))
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..._params import check_choice, check_number
from ..cache import ExitLogits
from ..confidence import SURENESS
from .base import EXIT_POLICIES, ExitPolicy


def geometric_ensemble(log_probs: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``[K, N, C]`` ensemble outputs ``log q_m`` from the exits' log-probabilities ``[K, N, C]``, the raw
    weights ``[K, K]`` (row m uses ``w_{m,0..m}``; the rest is ignored) and the biases ``[K, C]``."""
    k = log_probs.shape[0]
    mask = torch.ones(k, k, dtype=torch.bool).tril()
    scale = torch.where(mask, weights[:k, :k].exp(), torch.zeros(())) / torch.arange(1, k + 1, dtype=log_probs.dtype)[:, None]
    return torch.einsum("mi,inc->mnc", scale, log_probs) + bias[:k, None, :]


@EXIT_POLICIES.register("ztw-ensemble")
class GeometricEnsemblePolicy(ExitPolicy):
    """ZTW's geometric ensemble of exits (see the module docstring), a confidence of it deciding the exit.

    Source: Wołczyk, Wójcik, Bałazy, Podolak, Tabor, Śmieja & Trzciński, NeurIPS 2021 (Zero Time Waste; gmum/Zero-Time-Waste).
    """

    source = "Wołczyk, Wójcik, Bałazy, Podolak, Tabor, Śmieja & Trzciński, NeurIPS 2021 (Zero Time Waste; gmum/Zero-Time-Waste)"

    learnable = True

    def __init__(
        self, *, confidence: str = "max-prob", epochs: int = 501, lr: float = 5e-4, batch_size: int = 512, seed: int = 0
    ) -> None:
        owner = type(self).__name__
        self.confidence = check_choice(confidence, name="confidence", owner=owner, choices=SURENESS)
        self.epochs = check_number(epochs, name="epochs", owner=owner, low=1, integer=True)
        self.lr = check_number(lr, name="lr", owner=owner, low=0.0, low_inclusive=False)
        self.batch_size = check_number(batch_size, name="batch_size", owner=owner, low=1, integer=True)
        self.seed = check_number(seed, name="seed", owner=owner, integer=True)
        self.weights: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    @property
    def is_fitted(self) -> bool:
        return self.weights is not None

    def fit(self, data: ExitLogits) -> GeometricEnsemblePolicy:
        super().fit(data)
        generator = torch.Generator().manual_seed(self.seed)
        k, c = data.n_exits, data.n_classes
        weights = (0.01 * torch.randn(k, k, generator=generator)).requires_grad_()
        bias = torch.zeros(k, c, requires_grad=True)
        optimiser = torch.optim.Adam([weights, bias], lr=self.lr)
        log_probs = torch.log_softmax(data.logits, -1)
        for _ in range(self.epochs):
            for rows in torch.randperm(data.n_samples, generator=generator).split(self.batch_size):
                out = geometric_ensemble(log_probs[:, rows], weights, bias)
                # the ensembles share no parameter: the sum of their losses trains each alone
                loss = F.cross_entropy(out.flatten(0, 1), data.labels[rows].repeat(k), reduction="sum") / len(rows)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.weights, self.bias = weights.detach(), bias.detach()
        return self

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_fitted(None if self.weights is None else len(self.weights), logits.shape[0])
        return geometric_ensemble(torch.log_softmax(logits, -1), self.weights, self.bias)

    def sureness(self, logits: torch.Tensor) -> torch.Tensor:
        return SURENESS[self.confidence](self.outputs(logits))
