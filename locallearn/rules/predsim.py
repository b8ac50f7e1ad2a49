"""``predsim`` and ``predsim-bio``: prediction + similarity matching (Nøkland & Eidnes 2019).

Per stage, the loss is ``(1 - beta) * pred + beta * sim``:

* ``pred``: cross-entropy of the stage's head (``predsim``), or, in
  ``predsim-bio``, binary cross-entropy against the label's fixed random
  binary code, with feedback alignment in the head's backward;
* ``sim``: mean squared difference between the similarity matrix of the
  batch's features and that of its labels. The similarity matrix ``S(X)`` is
  the "adjusted" cosine similarity: each row of ``X`` is centred on its own
  mean, scaled to unit norm, and ``S = X X^T``. Conv
  features ``(N, C, H, W)`` are first pooled to one value per channel (the
  standard deviation over positions, as Nøkland & Eidnes do).
  ``predsim`` takes it of a learned projection of the features (a bias-free
  ``Linear`` for flat features, a bias-free 3x3 ``Conv2d`` for maps) and of
  the one-hot labels; ``predsim-bio`` takes it of the raw (pooled) features
  and of the label codes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.feedback import convert_layers
from locallearn.net import LocalNet, Stage
from locallearn.rules.base import RULES, LocalRule, StageOutput


def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """Adjusted cosine similarity of the rows of ``x`` (conv maps pooled to per-channel std).

    Rows are centred on their own mean and scaled to unit norm (a constant row gives a zero row).

    Example:
        >>> similarity_matrix(torch.eye(3))
        tensor([[ 1.0000, -0.5000, -0.5000],
                [-0.5000,  1.0000, -0.5000],
                [-0.5000, -0.5000,  1.0000]])
    """
    if x.dim() == 4 and x.shape[2] * x.shape[3] > 1:
        x = x.flatten(2).std(dim=2)
    x = x.flatten(1)
    x = F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)
    return x @ x.t()


def _feature_width(stage: Stage, index: int) -> tuple[str, int]:
    """``("flat", D)`` or ``("map", C)`` of a block's output, read from its last sized layer."""
    for module in reversed(list(stage.block.modules())):
        if isinstance(module, nn.Linear):
            return "flat", module.out_features
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            return "map", module.out_channels if isinstance(module, nn.Conv2d) else module.num_features
        if isinstance(module, nn.BatchNorm1d):
            return "flat", module.num_features
    raise ValueError(
        f"predsim cannot tell the width of stage {index}'s features: its block has no Linear, Conv2d or "
        "BatchNorm layer to read it from."
    )


class _PredSimBase(LocalRule):
    """The shared loss; subclasses say how features and labels are prepared."""

    detach_inputs = True

    def __init__(self, *, beta: float = 0.99) -> None:
        self.beta = check_number(beta, name="beta", owner=type(self).__name__, low=0.0, high=1.0)

    def _terms(self, out: StageOutput, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(prediction loss, features for S, similarity matrix of the labels)``."""
        raise NotImplementedError

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        pred, features, target = self._terms(out, y)
        if self.beta == 0.0:
            return pred
        return torch.lerp(pred, F.mse_loss(similarity_matrix(features), target), self.beta)


@RULES.register("predsim")
class PredSim(_PredSimBase):
    """Prediction (cross-entropy of the head) plus similarity matching of projected features.

    Args:
        beta: weight of the similarity term, in [0, 1] (Nøkland & Eidnes use 0.99).
        sim_dim: width of the learned projection (outputs of the Linear, channels of the
            3x3 Conv2d), capped at the feature width; ``None`` keeps the full width as in
            the paper. A narrower projection costs less; the label similarity has rank
            at most the number of classes, so 128 (the default) keeps the cost near ``local``'s.

    ``setup`` attaches the projection to each stage as ``stage.aux["predsim"]``.

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8, 8), 3)
        >>> rule = PredSim(beta=0.5, sim_dim=6)
        >>> rule.setup(net)
        >>> net.stages[1].aux["predsim"]
        Linear(in_features=8, out_features=6, bias=False)
    """

    def __init__(self, *, beta: float = 0.99, sim_dim: int | None = 128) -> None:
        super().__init__(beta=beta)
        if sim_dim is not None:
            sim_dim = check_number(sim_dim, name="sim_dim", owner="PredSim", low=1, integer=True)
        self.sim_dim = sim_dim

    def setup(self, net: LocalNet) -> None:
        for k, stage in enumerate(net.stages):
            if "predsim" in stage.aux:
                continue
            kind, width = _feature_width(stage, k)
            out = width if self.sim_dim is None else min(width, self.sim_dim)
            device = next(stage.parameters()).device
            proj = nn.Linear(width, out, bias=False) if kind == "flat" else nn.Conv2d(width, out, 3, padding=1, bias=False)
            stage.aux["predsim"] = proj.to(device)

    def _terms(self, out, y):
        proj = out.stage.aux["predsim"]
        h = out.h_out if isinstance(proj, nn.Conv2d) else out.h_out.flatten(1)
        other = -1.0 / max(out.logits.shape[1] - 1, 1)
        target = torch.where(y[:, None] == y[None, :], 1.0, other).to(h.dtype)  # similarity_matrix of one-hot labels
        return F.cross_entropy(out.logits, y), proj(h), target


class LabelCodeHead(nn.Module):
    """Wraps a head whose ``K`` outputs (one per class) are logits of the bits of a label code;
    returns class scores.

    The code of class ``c`` is the sign pattern of row ``c`` of a fixed random Gaussian
    projection of the one-hot labels (``codes``, 0/1, shape ``(K, K)``, drawn from
    ``seed``, rows distinct and at least ``K // 4`` bits apart when such a draw is found).
    The score of class ``c`` is the log-likelihood of its code under independent
    Bernoulli bits, so ``argmax`` is maximum-likelihood decoding and ``-score_y / K``
    is the binary cross-entropy of the logits against the true label's code.

    Example:
        >>> head = LabelCodeHead(nn.Linear(5, 4), seed=0)
        >>> head(torch.randn(2, 5)).shape, head.codes.shape
        (torch.Size([2, 4]), torch.Size([4, 4]))
    """

    def __init__(self, inner: nn.Module, *, seed: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.seed = seed
        self.register_buffer("codes", torch.empty(0), persistent=False)
        self.register_buffer("code_similarity", torch.empty(0), persistent=False)

    def _codes_for(self, bits: int, like: torch.Tensor) -> torch.Tensor:
        stale = self.codes.is_inference() and not torch.is_inference_mode_enabled()
        if self.codes.shape != (bits, bits) or stale:
            generator = torch.Generator().manual_seed(self.seed)
            best, best_gap = None, -1
            for _ in range(1000):
                codes = (torch.randn(bits, bits, generator=generator) > 0).float()  # one-hot rows @ P, binarised
                gaps = torch.cdist(codes, codes, p=1) + bits * torch.eye(bits)
                gap = int(gaps.min())
                if gap > best_gap:
                    best, best_gap = codes, gap
                if best_gap >= max(bits // 4, 1):
                    break
            self.codes = best.to(like)
            self.code_similarity = similarity_matrix(self.codes)
        return self.codes

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.inner(h)
        # log sigmoid(z) = z - softplus(z) for a 1 bit, log sigmoid(-z) = -softplus(z) for a 0 bit
        return torch.addmm(-F.softplus(z).sum(1, keepdim=True), z, self._codes_for(z.shape[1], z).t())


@RULES.register("predsim-bio")
class PredSimBio(_PredSimBase):
    """The biologically plausible ``predsim``: no weight transport, no learned projection, no softmax.

    * each head's outputs become logits of the bits of a fixed random binary code of the
      label (:class:`LabelCodeHead`; its class scores are the exit's prediction), trained
      with binary cross-entropy;
    * each head's layers are FA layers (fixed random feedback, ``feedback_scale``);
    * the similarity term compares the raw features (conv maps pooled to per-channel std)
      with the label codes.

    ``setup`` wraps ``stage.head`` in a :class:`LabelCodeHead` once.

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8,), 3)
        >>> PredSimBio(seed=1).setup(net)
        >>> type(net.stages[0].head).__name__, type(net.stages[0].head.inner.linear).__name__
        ('LabelCodeHead', 'FALinear')
    """

    def __init__(self, *, beta: float = 0.99, feedback_scale: float = 1.0, seed: int = 0) -> None:
        super().__init__(beta=beta)
        self.feedback_scale = check_number(feedback_scale, name="feedback_scale", owner="PredSimBio", low=0.0, low_inclusive=False)
        self.seed = check_number(seed, name="seed", owner="PredSimBio", low=0, integer=True)

    def setup(self, net: LocalNet) -> None:
        for stage in net.stages:
            if isinstance(stage.head, LabelCodeHead):
                continue
            convert_layers(stage.head, "fa", scale=self.feedback_scale)
            stage.head = LabelCodeHead(stage.head, seed=self.seed)

    def _terms(self, out, y):
        head = out.stage.head
        if not isinstance(head, LabelCodeHead):
            raise RuntimeError("predsim-bio: run setup(net) first (the trainer does), so each head decodes label codes.")
        bits = out.logits.shape[1]
        pred = -out.logits.gather(1, y[:, None]).mean() / bits
        return pred, out.h_out, head.code_similarity[y[:, None], y[None, :]]

