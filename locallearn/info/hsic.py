"""Hilbert-Schmidt independence criterion with Gaussian kernels (biased estimator and nHSIC).

HSIC(X, Y) = tr(K H L H) / (N - 1)^2 with H = I - 11^T / N; the normalised variant is
nHSIC = HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y)), in [0, 1], 1 for X = Y. The kernel is
exp(-||a - a'||^2 / (2 sigma^2)), or with ``scale_by_dim`` the HSIC-bottleneck kernel
exp(-||a - a'||^2 / (2 sigma^2 d)) (Ma, Lewis & Kleijn). ``sigma=None`` takes, for each
variable, the median of its nonzero pairwise distances (the median heuristic; that bandwidth
is not differentiated through). HSIC is a dependence measure, not MI: it has no units.

The tensor function keeps autograd, so it serves as a training loss.

Example:
    >>> x = torch.linspace(-1, 1, 50)[:, None]
    >>> round(hsic(x, x, normalized=True), 6)
    1.0
"""

from __future__ import annotations

from typing import Any

import torch

from .._params import check_number
from ._checks import as_tensor_pair
from ._estimator import ESTIMATORS, Estimator


def _check_params(owner: str, sigma: Any) -> None:
    if sigma is not None:
        check_number(sigma, name="sigma", owner=owner, low=0.0, low_inclusive=False)


def gaussian_gram(a: torch.Tensor, *, sigma: float | None = None, scale_by_dim: bool = False) -> torch.Tensor:
    """The Gaussian kernel matrix of the rows of ``a`` (median-distance bandwidth when ``sigma`` is None).

    Example:
        >>> gaussian_gram(torch.tensor([[0.0], [1.0]]), sigma=1.0)
        tensor([[1.0000, 0.6065],
                [0.6065, 1.0000]])
    """
    sq = (a * a).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * a @ a.T).clamp_min(0.0)
    if sigma is None:
        dist = d2.detach().sqrt()
        off = dist[dist > 0]
        sigma = float(off.median()) if off.numel() else 1.0
    width = 2.0 * sigma**2 * (a.shape[1] if scale_by_dim else 1)
    return torch.exp(-d2 / width)


def _centred(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def hsic_tensor(
    x: Any, y: Any, *, sigma: float | None = None, scale_by_dim: bool = False, normalized: bool = False
) -> torch.Tensor:
    """Differentiable biased HSIC (or nHSIC with ``normalized=True``) of two sample matrices.

    Example:
        >>> x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
        >>> loss = -hsic_tensor(x, x[:, :1], normalized=True); loss.backward()
        >>> x.grad.shape
        torch.Size([64, 3])
    """
    _check_params("hsic_tensor", sigma)
    x, y = as_tensor_pair(x, y)
    n = x.shape[0]
    kc = _centred(gaussian_gram(x, sigma=sigma, scale_by_dim=scale_by_dim))
    lc = _centred(gaussian_gram(y.to(x.dtype), sigma=sigma, scale_by_dim=scale_by_dim))
    cross = (kc * lc).sum()
    if normalized:
        return cross / ((kc * kc).sum() * (lc * lc).sum()).clamp_min(1e-24).sqrt()  # clamp first: no NaN grad
    return cross / (n - 1) ** 2


def hsic(x: Any, y: Any, *, sigma: float | None = None, scale_by_dim: bool = False, normalized: bool = False) -> float:
    """HSIC (or nHSIC) of two sample matrices as a float; see :func:`hsic_tensor`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(300, 1, generator=g); noise = torch.randn(300, 1, generator=g)
        >>> hsic(x, x + 0.1 * noise, normalized=True) > 10 * hsic(x, noise, normalized=True)
        True
    """
    with torch.no_grad():
        return float(hsic_tensor(x, y, sigma=sigma, scale_by_dim=scale_by_dim, normalized=normalized))


@ESTIMATORS.register("hsic")
class HSIC(Estimator):
    """Batch-accumulating twin of :func:`hsic`.

    Example:
        >>> x = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None]
        >>> est = HSIC(normalized=True); est.update(x[:20], x[:20] ** 2); est.update(x[20:], x[20:] ** 2)
        >>> est.compute() == hsic(x, x ** 2, normalized=True)
        True
    """

    function = staticmethod(hsic)

    def __init__(self, *, sigma: float | None = None, scale_by_dim: bool = False, normalized: bool = False) -> None:
        _check_params(type(self).__name__, sigma)
        self.sigma, self.scale_by_dim, self.normalized = sigma, scale_by_dim, normalized
        super().__init__()
