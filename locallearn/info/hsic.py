"""Hilbert-Schmidt independence criterion with Gaussian kernels (biased estimator and two normalisations).

HSIC(X, Y) = tr(K H L H) / (N - 1)^2 with H = I - 11^T / N. ``normalization``:

* ``"none"``: HSIC itself;
* ``"cosine"``: HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)), in [0, 1], 1 for X = Y;
* ``"cca"``: the normalised HSIC of the HSIC bottleneck (Ma, Lewis & Kleijn 2020, after
  Fukumizu et al.'s normalised cross-covariance): with the centred kernels Kc = H K H,
  Lc = H L H and R_K = Kc (Kc + eps N I)^-1, nHSIC = tr(R_K R_L) (eps = 1e-5 as in the
  authors' code). It lies in [0, N]; tr(R_K R_K) counts the kernel's effective rank.

The kernel is exp(-||a - a'||^2 / (2 sigma^2)), or with ``scale_by_dim`` the HSIC-bottleneck
kernel exp(-||a - a'||^2 / (2 sigma^2 d)) for a ``d``-feature variable. ``sigma=None`` is a
median heuristic per variable (``median="distance"``, the default here: the median nonzero distance
between distinct samples, Gretton et al.'s; ``"squared"``: the median squared distance, as the
HSIC-bottleneck authors' code), and ``scale_by_dim`` does not apply to it (that bandwidth is not
differentiated through).
HSIC is a dependence measure, not MI: it has no units.

The tensor function keeps autograd, so it serves as a training loss.

Example:
    >>> x = torch.linspace(-1, 1, 50)[:, None]
    >>> round(hsic(x, x, normalization="cosine"), 6)
    1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._params import check_choice, check_number
from ._checks import as_tensor_pair
from ._estimator import ESTIMATORS, Estimator


NORMALIZATIONS = ("none", "cosine", "cca")


def _check_params(owner: str, sigma: Any, normalization: Any, eps: Any) -> None:
    if sigma is not None:
        check_number(sigma, name="sigma", owner=owner, low=0.0, low_inclusive=False)
    check_choice(normalization, name="normalization", owner=owner, choices=NORMALIZATIONS)
    check_number(eps, name="eps", owner=owner, low=0.0, low_inclusive=False)


MEDIANS = ("distance", "squared")


def median_width(d2: torch.Tensor, median: str = "distance") -> torch.Tensor:
    """The kernel's ``2 sigma^2`` from the squared distances ``d2`` of a batch by a median heuristic, as a
    0-d tensor computed on ``d2``'s device (no host read, so a training step does not synchronise).

    ``"distance"``: sigma = the median nonzero pairwise distance (each pair once; the lower middle
    value for an even count), so the median pair's kernel value is exp(-1/2) (Gretton et al.'s
    heuristic). ``"squared"``: sigma = the median pairwise *squared* distance (each pair once, zeros
    kept, the mean of the two middle values for an even count, the mean if that median is 0, at least
    1e-2), as the HSIC-bottleneck authors' code does (choasma/HSIC-bottleneck ``sigma_estimation``).

    Example:
        >>> d2 = torch.tensor([[0.0, 4.0, 9.0], [4.0, 0.0, 1.0], [9.0, 1.0, 0.0]])
        >>> float(median_width(d2, "distance")), float(median_width(d2, "squared"))  # sigma 2 (distances 1, 2, 3); sigma 4
        (8.0, 32.0)
    """
    rows, cols = torch.triu_indices(len(d2), len(d2), offset=1, device=d2.device)
    pairs = d2.detach()[rows, cols]  # each pair once; not the diagonal (rounding leaves it ~1e-7, not 0)
    if pairs.numel() == 0:  # one sample: a shape, known without reading values
        return torch.tensor(2.0, dtype=torch.float64, device=d2.device)
    if median == "squared":
        values = pairs.double()
        sigma = torch.quantile(values, 0.5)  # np.median's mean of the two middle values
        sigma = torch.where(sigma > 0, sigma, values.mean())
        return 2.0 * sigma.clamp_min(1e-2) ** 2
    distances = pairs.sqrt()
    middle = torch.nanmedian(torch.where(distances > 0, distances, torch.nan))  # the lower middle nonzero one
    return 2.0 * torch.where(middle.isnan(), 1.0, middle) ** 2


def gaussian_gram(
    a: torch.Tensor, *, sigma: float | None = None, scale_by_dim: bool = False, median: str = "distance"
) -> torch.Tensor:
    """The Gaussian kernel matrix of the rows of ``a``.

    ``sigma=None``: a median heuristic (:func:`median_width`, ``median``), not scaled by the
    dimension, whatever ``scale_by_dim``.

    Example:
        >>> gaussian_gram(torch.tensor([[0.0], [1.0]]), sigma=1.0)
        tensor([[1.0000, 0.6065],
                [0.6065, 1.0000]])
    """
    sq = (a * a).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * a @ a.T).clamp_min(0.0)
    if sigma is None:
        width = median_width(d2, median)
    else:
        width = 2.0 * sigma**2 * (a.shape[1] if scale_by_dim else 1)
    return torch.exp(-d2 / width)


def _centred(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def _regularised_ratio(kc: torch.Tensor, eps: float) -> torch.Tensor:
    """Kc (Kc + eps N I)^-1 (the two factors commute, so a solve gives it)."""
    n = kc.shape[0]
    return torch.linalg.solve(kc + eps * n * torch.eye(n, dtype=kc.dtype, device=kc.device), kc)


def hsic_tensor(
    x: Any,
    y: Any,
    *,
    sigma: float | None = None,
    scale_by_dim: bool = False,
    normalization: str = "none",
    eps: float = 1e-5,
    median: str = "distance",
    check_finite: bool = True,
) -> torch.Tensor:
    """Differentiable biased HSIC, or a normalised HSIC (``normalization``), of two sample matrices.

    ``eps`` is the regulariser of ``normalization="cca"``; ``median`` the heuristic of ``sigma=None``;
    ``check_finite=False`` skips the inputs' NaN/inf check, a host read (a training step's loss, checked
    for NaN on the device, stands in for it).

    Example:
        >>> x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
        >>> loss = -hsic_tensor(x, x[:, :1], normalization="cca"); loss.backward()
        >>> x.grad.shape
        torch.Size([64, 3])
    """
    _check_params("hsic_tensor", sigma, normalization, eps)
    check_choice(median, name="median", owner="hsic_tensor", choices=MEDIANS)
    x, y = as_tensor_pair(x, y, check_finite=check_finite)
    n = x.shape[0]
    kc = _centred(gaussian_gram(x, sigma=sigma, scale_by_dim=scale_by_dim, median=median))
    lc = _centred(gaussian_gram(y.to(x.dtype), sigma=sigma, scale_by_dim=scale_by_dim, median=median))
    if normalization == "cca":
        return (_regularised_ratio(kc, eps) * _regularised_ratio(lc, eps).T).sum()
    cross = (kc * lc).sum()
    if normalization == "cosine":
        return cross / ((kc * kc).sum() * (lc * lc).sum()).clamp_min(1e-24).sqrt()  # clamp first: no NaN grad
    return cross / (n - 1) ** 2


def hsic(x: Any, y: Any, **options: Any) -> float:
    """HSIC (or a normalised HSIC) of two sample matrices as a float; ``options`` are :func:`hsic_tensor`'s.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(300, 1, generator=g); noise = torch.randn(300, 1, generator=g)
        >>> hsic(x, x + 0.1 * noise, normalization="cosine") > 10 * hsic(x, noise, normalization="cosine")
        True
    """
    with torch.no_grad():
        return float(hsic_tensor(x, y, **options))


@ESTIMATORS.register("hsic")
class HSIC(Estimator):
    """Batch-accumulating twin of :func:`hsic`.

    Source: Gretton, Bousquet, Smola & Schölkopf, ALT 2005; the 'cca' form: Ma, Lewis & Kleijn, AAAI 2020 (choasma/HSIC-bottleneck).

    Example:
        >>> x = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None]
        >>> est = HSIC(normalization="cosine"); est.update(x[:20], x[:20] ** 2); est.update(x[20:], x[20:] ** 2)
        >>> est.compute() == hsic(x, x ** 2, normalization="cosine")
        True
    """

    source = "Gretton, Bousquet, Smola & Schölkopf, ALT 2005; the 'cca' form: Ma, Lewis & Kleijn, AAAI 2020 (choasma/HSIC-bottleneck)"

    function = staticmethod(hsic)
    measure = "HSIC"  # not mutual information: the plane shows HSIC(X, T) and HSIC(T, Y), as Ma et al. 2019 do

    def __init__(
        self, *, sigma: float | None = None, scale_by_dim: bool = False, normalization: str = "none", eps: float = 1e-5
    ) -> None:
        _check_params(type(self).__name__, sigma, normalization, eps)
        self.sigma, self.scale_by_dim, self.normalization, self.eps = sigma, scale_by_dim, normalization, eps
        super().__init__()
