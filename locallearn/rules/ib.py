"""``ib``: an information-bottleneck local loss per stage, in two variants.

* ``variant="hsic"`` (HSIC bottleneck, Ma, Lewis & Kleijn 2020): the block minimises
  ``nHSIC(T, X) - lambda_y * nHSIC(T, Y)`` with the Gaussian kernel
  ``exp(-||a - a'||^2 / (2 sigma^2 d))`` and one-hot labels Y. nHSIC is, by default, the
  paper's normalised form ``tr(Kx (Kx + eps m I)^-1 Ky (Ky + eps m I)^-1)`` on centred kernels
  (``normalization="cca"``; see ``locallearn.info.hsic``); ``normalization="cosine"`` is the
  older HSIC(X,Y)/sqrt(HSIC(X,X) HSIC(Y,Y)), a departure from the paper (its compression
  term is several times weaker at the paper's sigma and lambda_y). X is the network input
  ``StageOutput.x`` for every stage, as in the paper (``x_source="network"``);
  ``x_source="stage"`` takes the stage's own input ``h_in`` instead (the previous stage's
  output: a layer-local bottleneck, a departure from the paper). The head learns by
  cross-entropy on detached features, so it reads the representation out without shaping it
  (the paper trains its output layer separately).
* ``variant="kde"`` (nonlinear IB, Kolchinsky, Tracey & Wolpert): noise N(0, noise_var) is
  added to the stage output T, the head's cross-entropy on the noisy T stands in for
  -I(T;Y), and ``beta`` times the KDE (pairwise-KL) upper bound on I(X;T) over the batch is
  added. The bound is at most ln(batch size), and it only has a gradient when pairs of batch
  points lie within a few noise standard deviations of each other: with a noise variance far
  below the squared distances between representations (0.1 for a 128-unit ReLU layer on
  digits) it is the constant ln(batch) and does nothing. The default 1.0 acts on digits;
  larger beta * noise_var compresses more, and too much collapses the stage (chance accuracy).

Example:
    >>> from locallearn import rules
    >>> rules.create("ib", variant="kde", beta=0.5).get_params()
    {'variant': 'kde', 'lambda_y': 50.0, 'sigma': 5.0, 'median': 'squared', 'normalization': 'cca', 'x_source': 'network', 'beta': 0.5, 'noise_var': 1.0}
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.info.hsic import MEDIANS, hsic_tensor
from locallearn.info.kde import kde_mi_tensor
from locallearn.rules.base import RULES, LocalRule, StageOutput


@RULES.register("ib")
class InformationBottleneck(LocalRule):
    """Per-stage information-bottleneck loss (``variant`` = ``"hsic"`` or ``"kde"``).

    Args:
        variant: ``"hsic"`` or ``"kde"``.
        lambda_y: hsic: weight of the label term (paper: 50).
        sigma: hsic: kernel width (paper: 5); ``None`` takes a median heuristic on each batch (``median``).
        median: hsic with ``sigma=None``: ``"squared"`` (default) sigma = the median squared pairwise
            distance, as the authors' ``sigma_estimation``; ``"distance"`` the median distance (the
            earlier behaviour, Gretton et al.'s heuristic).
        normalization: hsic: ``"cca"`` (the paper's nHSIC) or ``"cosine"`` (a departure, see above).
        x_source: hsic: ``"network"`` (the network input, as the paper) or ``"stage"`` (the stage's input).
        beta: kde: weight of the I(X;T) upper bound.
        noise_var: kde: variance of the noise added to the stage output.

    The balance of the two HSIC terms depends on the batch size ``m``: nHSIC(T, X) = tr(R_T R_X)
    grows with the effective rank of the batch's kernels (up to ``m``), while nHSIC(T, Y) for
    one-hot labels is capped near the number of classes (the label kernel has that rank). So
    at a fixed ``lambda_y`` the compression term weighs more in a larger batch: issue 23 measured
    a compression share of 0.062 at this package's default batch 32 against 0.171 at batch 512.
    Compare runs at the same batch size, and retune ``lambda_y`` when changing it.

    Source: hsic: Ma, Lewis & Kleijn, AAAI 2020 (choasma/HSIC-bottleneck); kde: Kolchinsky, Tracey & Wolpert, Entropy 2019 (nonlinear information bottleneck).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from locallearn.net import Stage
        >>> stage = Stage(nn.Linear(4, 8), nn.Linear(8, 3)); x = torch.randn(16, 4); h = stage.block(x)
        >>> out = StageOutput(index=0, is_last=False, stage=stage, h_in=x, h_out=h, logits=stage.head(h), x=x)
        >>> InformationBottleneck(variant="hsic").stage_loss(out, torch.arange(16) % 3).ndim
        0
    """

    source = 'hsic: Ma, Lewis & Kleijn, AAAI 2020 (choasma/HSIC-bottleneck); kde: Kolchinsky, Tracey & Wolpert, Entropy 2019 (nonlinear information bottleneck)'

    detach_inputs = True
    needs_input = True  # the default (hsic, x_source="network"); an instance that does not sets False

    def __init__(
        self,
        *,
        variant: str = "hsic",
        lambda_y: float = 50.0,
        sigma: float | None = 5.0,
        median: str = "squared",
        normalization: str = "cca",
        x_source: str = "network",
        beta: float = 0.1,
        noise_var: float = 1.0,
    ) -> None:
        owner = type(self).__name__
        self.variant = check_choice(variant, name="variant", owner=owner, choices=("hsic", "kde"))
        self.lambda_y = check_number(lambda_y, name="lambda_y", owner=owner, low=0.0)
        self.sigma = None if sigma is None else check_number(sigma, name="sigma", owner=owner, low=0.0,
                                                            low_inclusive=False)
        self.median = check_choice(median, name="median", owner=owner, choices=MEDIANS)
        self.normalization = check_choice(normalization, name="normalization", owner=owner, choices=("cca", "cosine"))
        self.x_source = check_choice(x_source, name="x_source", owner=owner, choices=("network", "stage"))
        self.needs_input = variant == "hsic" and x_source == "network"
        self.beta = check_number(beta, name="beta", owner=owner, low=0.0)
        self.noise_var = check_number(noise_var, name="noise_var", owner=owner, low=0.0, low_inclusive=False)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        return self._hsic_loss(out, y) if self.variant == "hsic" else self._kde_loss(out, y)

    def _hsic_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        t = out.h_out.flatten(1)
        labels = F.one_hot(y, out.logits.shape[1]).to(t.dtype)
        kw = dict(sigma=self.sigma, scale_by_dim=True, normalization=self.normalization, median=self.median,
                  check_finite=False)  # no host read in the step: a NaN shows in the loss, which the engine checks
        x = out.h_in if self.x_source == "stage" else out.x
        if x is None:
            raise ValueError(
                "ib(variant='hsic', x_source='network') needs the network input, StageOutput.x, which this caller did "
                "not set; set it, or pass x_source='stage' to compress the stage's own input instead."
            )
        bottleneck = hsic_tensor(t, x.flatten(1), **kw) - self.lambda_y * hsic_tensor(t, labels, **kw)
        readout = F.cross_entropy(out.stage.head(out.h_out.detach()), y)
        return bottleneck + readout

    def _kde_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        h = out.h_out
        noisy = h + math.sqrt(self.noise_var) * torch.randn_like(h)
        prediction = F.cross_entropy(out.stage.head(noisy), y)
        return prediction + self.beta * kde_mi_tensor(h.flatten(1), noise_var=self.noise_var, bound="upper", check_finite=False)
