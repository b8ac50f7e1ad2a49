"""Pairwise-distance (KDE) bounds on mutual information (Kolchinsky & Tracey; used by Saxe et al.).

The layer is made noisy, T = h(X) + N(0, noise_var I), so T is a mixture of Gaussians centred on
the samples h_i. For a discrete variable C that groups the samples (C = X: every distinct input its
own group; C = Y: the class labels), with K_ij = exp(-||h_i - h_j||^2 / (f noise_var)):

    I(C;T) ~ (1/N) sum_i [ ln (1/N_c(i)) sum_{j in c(i)} K_ij  -  ln (1/N) sum_j K_ij ]

f = 2 (Kullback-Leibler distances) gives the upper bound, f = 8 (Bhattacharyya) the lower bound.
For C = X with distinct rows the first term is 0 and this is exactly the formula of ANCHORS item 7.
For C = Y both entropies are estimated with the same f and subtracted, so the result is an estimate
between the bounds' spirit, not a guaranteed bound (Saxe et al. report it the same way).

Example:
    >>> h = np.array([[0.0], [0.0], [1.0], [1.0]])       # two centres at distance 1, noise_var = 1
    >>> round(kde_mi([0, 0, 1, 1], h, noise_var=1.0, bound="upper"), 4)
    0.2191
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._params import check_choice, check_number
from ._checks import as_matrix, as_tensor, check_base, in_base, row_labels
from ._estimator import ESTIMATORS, Estimator

_FACTOR = {"upper": 2.0, "lower": 8.0}


def _check_params(owner: str, noise_var: Any, bound: Any) -> None:
    check_number(noise_var, name="noise_var", owner=owner, low=0.0, low_inclusive=False)
    check_choice(bound, name="bound", owner=owner, choices=tuple(_FACTOR))


def kde_mi_tensor(
    h: torch.Tensor, groups: torch.Tensor | None = None, *, noise_var: float, bound: str = "upper",
    check_finite: bool = True,
) -> torch.Tensor:
    """Differentiable I(C;T) in nats for T = h + noise; ``groups=None`` makes every row its own group.

    ``check_finite=False`` skips the NaN/inf check of ``h``, a host read (for a training step, whose
    NaN loss check catches them).

    With ``groups=None`` and ``bound="upper"`` this is the KDE upper bound on I(X;T) used as a
    regulariser by the nonlinear information bottleneck.

    Example:
        >>> h = torch.tensor([[0.0], [2.0]], requires_grad=True)
        >>> i = kde_mi_tensor(h, noise_var=1.0); i.backward()
        >>> round(i.item(), 4), h.grad.abs().sum().item() > 0
        (0.5662, True)
    """
    _check_params("kde_mi_tensor", noise_var, bound)
    h = as_tensor(h, name="h", check_finite=check_finite)
    n = h.shape[0]
    sq = (h * h).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * h @ h.T).clamp_min(0.0)
    log_k = -d2 / (_FACTOR[bound] * noise_var)
    log_mean_all = torch.logsumexp(log_k, dim=1) - math.log(n)
    if groups is None:
        return -log_mean_all.mean()
    if groups.shape != (n,):
        raise ValueError(f"groups must hold one label per row of h ({n}); got shape {tuple(groups.shape)}.")
    same = groups[:, None] == groups[None, :]
    log_mean_own = torch.logsumexp(log_k.masked_fill(~same, -math.inf), dim=1) - torch.log(same.sum(1).to(h))
    return (log_mean_own - log_mean_all).mean()


def kde_mi(x: Any, t: Any, *, noise_var: float = 0.1, bound: str = "upper", base: float = math.e) -> float:
    """KDE estimate of I(X;T) for T = t + N(0, noise_var I), grouping samples by the distinct rows of x.

    Args:
        x: the discrete variable (inputs, or labels); equal rows form one group.
        t: the noiseless representation h(X), one row per sample.
        noise_var: variance of the added Gaussian noise (Saxe et al.: 0.1 on MNIST).
        bound: ``"upper"`` (pairwise KL) or ``"lower"`` (pairwise Bhattacharyya).
        base: ``math.e`` for nats, 2 for bits.

    Example:
        >>> h = np.array([[0.0], [1.0]])
        >>> round(kde_mi([0, 1], h, noise_var=1.0, bound="lower"), 4)
        0.0605
    """
    _check_params("kde_mi", noise_var, bound)
    check_base(base, owner="kde_mi")
    x, t = as_matrix(x, name="x"), as_matrix(t, name="t")
    if len(x) != len(t):
        raise ValueError(f"x and t must have the same number of samples; got {len(x)} and {len(t)}.")
    groups = torch.from_numpy(row_labels(x))
    with torch.no_grad():
        value = kde_mi_tensor(torch.from_numpy(t), groups, noise_var=noise_var, bound=bound)
    return in_base(float(value), base)


@ESTIMATORS.register("kde")
class KDEMI(Estimator):
    """Batch-accumulating twin of :func:`kde_mi` (``update(x, t)``; x groups the samples).

    Source: Kolchinsky & Tracey, Entropy 2017 (pairwise-distance bounds); as used by Saxe et al., ICLR 2018 (artemyk/ibsgd).

    Example:
        >>> est = KDEMI(noise_var=1.0)
        >>> est.update([0], [[0.0]]); est.update([1], [[1.0]])
        >>> round(est.compute(), 4)
        0.2191
    """

    source = 'Kolchinsky & Tracey, Entropy 2017 (pairwise-distance bounds); as used by Saxe et al., ICLR 2018 (artemyk/ibsgd)'

    function = staticmethod(kde_mi)

    def __init__(self, *, noise_var: float = 0.1, bound: str = "upper", base: float = math.e) -> None:
        _check_params(type(self).__name__, noise_var, bound)
        check_base(base, owner=type(self).__name__)
        self.noise_var, self.bound, self.base = noise_var, bound, base
        super().__init__()

    def plane_point(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Saxe et al.: T + N(0, noise_var) grouped by the distinct inputs, then by the labels."""
        return self._estimate(x, t), self._estimate(y, t)
