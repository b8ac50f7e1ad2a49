"""``predsim`` and ``predsim-bio``: prediction + similarity matching (Nøkland & Eidnes 2019).

Per stage, the loss is ``(1 - beta) * pred + beta * sim``:

* ``pred``: cross-entropy of the stage's head (``predsim``), or, in
  ``predsim-bio``, binary cross-entropy against the label's fixed random
  binary code, with feedback alignment in the head's backward;
* ``sim``: mean squared difference between the similarity matrix of the
  batch's features and that of its labels. The similarity matrix ``S(X)`` is
  the "adjusted" cosine similarity: each row of ``X`` is centred on its own
  mean, scaled to unit norm, and ``S = X X^T``. Conv features ``(N, C, H, W)``
  with more than 3 channels and a height above 1 are first pooled to one value
  per channel (the standard deviation over positions); others are flattened,
  as in Nøkland & Eidnes' code (``similarity_matrix`` in anokland/local-loss).
  Token features ``(N, T, D)`` (a transformer's) are pooled to their mean token
  (``locallearn.tokens``; the paper has no transformers).
  ``predsim`` takes it of a learned projection of the features (a bias-free
  ``Linear`` for flat features, a bias-free 3x3 ``Conv2d`` for maps) and of
  the one-hot labels; ``predsim-bio`` takes it of the raw (pooled) features
  and of the labels' fixed random projection.

``sim`` is the paper's similarity-only loss: the block learns from the similarity
term alone, and its head reads the detached features out with cross-entropy.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.feedback import convert_layers
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.tokens import pool_tokens


def similarity_matrix(x: torch.Tensor) -> torch.Tensor:
    """Adjusted cosine similarity of the rows of ``x``.

    Conv maps ``(N, C, H, W)`` with ``C > 3`` and ``H > 1`` are pooled to per-channel std,
    tokens ``(N, T, D)`` to their mean token, any other input is flattened (Nøkland & Eidnes). Rows are centred on their own mean
    and scaled to unit norm (a constant row gives a zero row).

    Example:
        >>> similarity_matrix(torch.eye(3))
        tensor([[ 1.0000, -0.5000, -0.5000],
                [-0.5000,  1.0000, -0.5000],
                [-0.5000, -0.5000,  1.0000]])
    """
    if x.dim() == 4 and x.shape[1] > 3 and x.shape[2] > 1:
        x = x.flatten(2).std(dim=2)
    if x.dim() == 3:
        x = pool_tokens(x, "mean")
    x = x.flatten(1)
    x = F.normalize(x - x.mean(dim=1, keepdim=True), dim=1)
    return x @ x.t()


class _PredSimBase(LocalRule):
    """The shared loss; subclasses say how features and labels are prepared."""

    detach_inputs = True
    changes_net = True  # predsim attaches a projection per stage, predsim-bio rebuilds the heads

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
            3x3 Conv2d), capped at the feature width; ``None`` (default) keeps the full width,
            as the authors' code does (``linear_loss = nn.Linear(num_out, num_out, bias=False)``,
            ``conv_loss`` with ``ch_out`` channels). A narrower one (e.g. 128, this package's
            earlier default) costs less; the label similarity has rank at most the number of classes.

    ``setup`` attaches the projection to each stage as ``stage.aux["predsim"]``.

    Source: Nøkland & Eidnes, ICML 2019, 'Training Neural Networks with Local Error Signals' (anokland/local-loss).

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8, 8), 3)
        >>> rule = PredSim(beta=0.5)
        >>> rule.setup(net)
        >>> net.stages[1].aux["predsim"]
        Linear(in_features=8, out_features=8, bias=False)
    """

    source = "Nøkland & Eidnes, ICML 2019, 'Training Neural Networks with Local Error Signals' (anokland/local-loss)"

    def __init__(self, *, beta: float = 0.99, sim_dim: int | None = None) -> None:
        super().__init__(beta=beta)
        if sim_dim is not None:
            sim_dim = check_number(sim_dim, name="sim_dim", owner="PredSim", low=1, integer=True)
        self.sim_dim = sim_dim

    def setup(self, net: LocalNet) -> None:
        for stage, shape in zip(net.stages, net.stage_shapes()):
            kind, width = shape.kind, shape.width
            out = width if self.sim_dim is None else min(width, self.sim_dim)
            device = next(stage.parameters()).device
            proj = nn.Linear(width, out, bias=False) if kind in ("flat", "tokens") else nn.Conv2d(width, out, 3, padding=1, bias=False)
            stage.aux["predsim"] = proj.to(device)

    def _terms(self, out, y):
        proj = out.stage.aux["predsim"]
        h = out.h_out
        h = h if isinstance(proj, nn.Conv2d) else pool_tokens(h, "mean") if h.dim() == 3 else h.flatten(1)
        other = -1.0 / max(out.logits.shape[1] - 1, 1)
        target = torch.where(y[:, None] == y[None, :], 1.0, other).to(h.dtype)  # similarity_matrix of one-hot labels
        return F.cross_entropy(out.logits, y), proj(h), target


def label_projection(num_classes: int, code_size: int, *, seed: int = 0, tries: int = 100) -> torch.Tensor:
    """The fixed random projection of the one-hot labels of predsim-bio, shape ``(num_classes, code_size)``.

    Row ``c`` is ``P e_c`` for a random ``P`` with entries uniform in ``+-1/sqrt(num_classes)``
    (the default init of the authors' bias-free ``nn.Linear(num_classes, target_proj_size)``),
    drawn from ``seed``. A draw is rejected, and the next one taken, when a row is constant
    (it would be a zero row after centring: an all-zero similarity target), when its sign
    bits are all equal (a constant prediction target), or when two classes share a sign
    code (maximum-likelihood decoding could not tell them apart).

    Example:
        >>> p = label_projection(10, 128, seed=0)
        >>> p.shape, bool((p.abs() <= 10 ** -0.5).all())
        (torch.Size([10, 128]), True)
    """
    generator = torch.Generator().manual_seed(seed)
    for _ in range(tries):
        projection = (2.0 * torch.rand(num_classes, code_size, generator=generator) - 1.0) / math.sqrt(num_classes)
        bits = projection > 0
        constant = (projection == projection[:, :1]).all(1) | (bits == bits[:, :1]).all(1)
        if not constant.any() and len(torch.unique(bits, dim=0)) == num_classes:
            return projection
    raise ValueError(
        f"No {code_size}-bit label code with distinct, non-constant rows for {num_classes} classes was found in {tries} "
        f"draws (seed {seed}); use a larger 'code_size' (at least log2(num_classes) + 1; the paper uses 128)."
    )


class LabelCodeHead(nn.Module):
    """Wraps a head whose ``code_size`` outputs are logits of the bits of a label code; returns class scores.

    The code of class ``c`` is the sign pattern of its fixed random label projection
    (:func:`label_projection` from ``seed``; buffer ``projection``, bits in ``codes``,
    and the similarity matrix of the projections in ``code_similarity``; all three
    are saved with the model's state, and rebuilt identically from the seed).
    The score of class ``c`` is the log-likelihood of its code under independent
    Bernoulli bits, so ``argmax`` is maximum-likelihood decoding and ``-score_y / code_size``
    is the binary cross-entropy of the logits against the true label's code.

    Example:
        >>> head = LabelCodeHead(nn.Linear(5, 16), num_classes=4, code_size=16, seed=0)
        >>> head(torch.randn(2, 5)).shape, head.codes.shape
        (torch.Size([2, 4]), torch.Size([4, 16]))
    """

    def __init__(self, inner: nn.Module, *, num_classes: int, code_size: int = 128, seed: int = 0) -> None:
        super().__init__()
        self.inner = inner
        self.seed = seed
        projection = label_projection(num_classes, code_size, seed=seed)
        self.register_buffer("projection", projection)
        self.register_buffer("codes", (projection > 0).float())
        self.register_buffer("code_similarity", similarity_matrix(projection))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.inner(h)
        # log sigmoid(z) = z - softplus(z) for a 1 bit, log sigmoid(-z) = -softplus(z) for a 0 bit
        return torch.addmm(-F.softplus(z).sum(1, keepdim=True), z, self.codes.t().to(z.dtype))


def _widen_readout(head: nn.Module, code_size: int) -> tuple[nn.Module, int]:
    """Replace the last ``nn.Linear`` of ``head`` (its read-out) by one with ``code_size`` outputs.

    Returns the head (a new module when the head is itself a Linear) and the number of classes it read out.
    A read-out whose weight is all zero (``LinearHead(zero_weight=True)``; the authors zero the ``LinearFA``
    decoder of ``--bio`` too) is replaced by one whose weight is zero.
    """
    linears = [name for name, m in head.named_modules() if type(m) is nn.Linear]
    if not linears:
        raise ValueError(
            f"predsim-bio needs a head whose read-out is an nn.Linear (one output per class); got {type(head).__name__} "
            "with none. Use head='linear', 'mlp' or 'conv'."
        )
    name = linears[-1]
    old = head.get_submodule(name)
    new = nn.Linear(old.in_features, code_size, bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
    if not old.weight.detach().any():  # a zero-initialised read-out (LinearHead(zero_weight=True)) stays so
        nn.init.zeros_(new.weight)
    if not name:
        return new, old.out_features
    parent, _, leaf = name.rpartition(".")
    setattr(head.get_submodule(parent), leaf, new)
    return head, old.out_features


@RULES.register("predsim-bio")
class PredSimBio(_PredSimBase):
    """The biologically plausible ``predsim`` of Nøkland & Eidnes (``--bio`` in anokland/local-loss).

    No weight transport, no learned projection, no softmax:

    * each label is projected through a fixed random linear map to ``code_size`` dimensions
      (:func:`label_projection`; the paper's ``target_proj_size`` is 128); the head's read-out
      is widened to ``code_size`` outputs, trained with binary cross-entropy against the
      projection's signs (:class:`LabelCodeHead`; its class scores decode the code, they are
      the exit's prediction);
    * each head's layers are FA layers (fixed random feedback, ``feedback_scale``);
    * the similarity term compares the raw features (conv maps as in :func:`similarity_matrix`)
      with the similarity of the labels' projections.

    Args:
        beta: weight of the similarity term, in [0, 1] (paper: 0.99).
        code_size: length of the label code (paper: 128).
        feedback_scale: scale of the heads' fixed random feedback.
        seed: seed of the label projection (the same for every stage, as one ``proj_y`` per layer
            would be a choice the paper's results do not depend on).

    ``setup`` widens and wraps ``stage.head`` in a :class:`LabelCodeHead` once.

    Source: Nøkland & Eidnes, ICML 2019, '--bio' (anokland/local-loss).

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8,), 3)
        >>> PredSimBio(seed=1).setup(net)
        >>> type(net.stages[0].head).__name__, type(net.stages[0].head.inner.linear).__name__
        ('LabelCodeHead', 'FALinear')
        >>> net(torch.zeros(2, 4))[0].shape
        torch.Size([2, 3])
    """

    source = "Nøkland & Eidnes, ICML 2019, '--bio' (anokland/local-loss)"

    def __init__(self, *, beta: float = 0.99, code_size: int = 128, feedback_scale: float = 1.0, seed: int = 0) -> None:
        super().__init__(beta=beta)
        self.code_size = check_number(code_size, name="code_size", owner="PredSimBio", low=2, integer=True)
        self.feedback_scale = check_number(feedback_scale, name="feedback_scale", owner="PredSimBio", low=0.0, low_inclusive=False)
        self.seed = check_number(seed, name="seed", owner="PredSimBio", low=0, integer=True)

    def setup(self, net: LocalNet) -> None:
        for stage in net.stages:
            head, num_classes = _widen_readout(stage.head, self.code_size)
            convert_layers(head, "fa", scale=self.feedback_scale)
            stage.head = LabelCodeHead(head, num_classes=num_classes, code_size=self.code_size, seed=self.seed).to(
                next(head.parameters()).device)

    def _terms(self, out, y):
        head = out.stage.head
        if not isinstance(head, LabelCodeHead):
            raise RuntimeError("predsim-bio: run setup(net) first (the trainer does), so each head decodes label codes.")
        pred = -out.logits.gather(1, y[:, None]).mean() / head.codes.shape[1]
        return pred, out.h_out, head.code_similarity[y[:, None], y[None, :]]


@RULES.register("sim")
class Sim(PredSim):
    """The similarity-matching loss alone ("sim" in Nøkland & Eidnes' tables).

    Each block learns only from ``mse(S(projected features), S(one-hot labels))`` (``predsim``
    with ``beta = 1``); its head learns by cross-entropy on the detached features, so it reads
    the representation out without shaping it (in the paper only the output layer is trained
    by cross-entropy; here every exit is). ``sim_dim`` as in :class:`PredSim` (default: full width).

    Source: Nøkland & Eidnes, ICML 2019, 'sim' (anokland/local-loss).

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8, 8), 3); rule = Sim(sim_dim=6); rule.setup(net)
        >>> rule.get_params()
        {'sim_dim': 6}
    """

    source = "Nøkland & Eidnes, ICML 2019, 'sim' (anokland/local-loss)"

    def __init__(self, *, sim_dim: int | None = None) -> None:
        super().__init__(beta=1.0, sim_dim=sim_dim)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        _, features, target = self._terms(out, y)
        readout = F.cross_entropy(out.stage.head(out.h_out.detach()), y)
        return F.mse_loss(similarity_matrix(features), target) + readout
