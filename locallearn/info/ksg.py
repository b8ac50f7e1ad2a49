"""Kraskov-Stoegbauer-Grassberger k-nearest-neighbour mutual information (algorithm 1).

With eps_i the Chebyshev (max-norm) distance from sample i to its k-th neighbour in the joint
space (x, y), and n_x(i), n_y(i) the numbers of other samples strictly closer than eps_i in each
marginal space:

    I = psi(N) + psi(k) - < psi(n_x + 1) + psi(n_y + 1) >

The neighbour search runs on KD-trees (scipy for the joint k-NN, scikit-learn for the radius
counts), with no Python loop over samples. Known bias: KSG underestimates large MI (it needs
exponentially many samples in I) and the bias grows with dimension; it can be slightly negative
for independent variables (sklearn clips at 0; this function does not).

Repeated values (ReLU zeros, quantised activations) break the algorithm's assumption of a
continuous density: ties put many neighbours at exactly the k-th distance, and two independent
ReLU-like variables read about -1.4 nats. As Kraskov et al. advise and scikit-learn does, a
tiny seeded noise breaks the ties by default: each (standardised) feature gets
``noise * max(1, mean |value|) * N(0, 1)``; ``noise=0`` turns it off and warns when there are ties.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); y = x + rng.normal(size=(2000, 1))
    >>> bool(abs(ksg_mi(x, y) - 0.5 * np.log(2)) < 0.05)      # true value 0.3466 nats
    True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma
from sklearn.neighbors import KDTree

from .._params import check_number
from ._checks import as_pair, check_base, in_base
from ._estimator import ESTIMATORS, Estimator


def _check_params(owner: str, k: Any, base: Any, noise: Any, seed: Any) -> None:
    check_number(k, name="k", owner=owner, low=1, integer=True)
    check_base(base, owner=owner)
    check_number(noise, name="noise", owner=owner, low=0.0)
    check_number(seed, name="seed", owner=owner, low=0, integer=True)


def _has_ties(a: np.ndarray) -> bool:
    """Whether any feature of ``a`` repeats a value."""
    ordered = np.sort(a, axis=0)
    return bool((ordered[1:] == ordered[:-1]).any())


def _strictly_within(points: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """For each point, how many other points lie at Chebyshev distance < its radius."""
    tree = KDTree(points, metric="chebyshev")
    return tree.query_radius(points, np.nextafter(radius, 0.0), count_only=True) - 1


def ksg_mi(
    x: Any, y: Any, *, k: int = 3, standardize: bool = True, noise: float = 1e-10, seed: int = 0, base: float = math.e
) -> float:
    """KSG estimate (algorithm 1) of I(X;Y) for continuous X and Y, in nats by default.

    Args:
        x, y: one row per sample, any number of features each.
        k: neighbours in the joint space (3 as in scikit-learn).
        standardize: scale every feature to unit variance first, as Kraskov et al. advise
            (MI is invariant to it; the estimate is not, because the max-norm mixes scales).
        noise: relative amplitude of the tie-breaking noise (scikit-learn's 1e-10); 0 for none.
        seed: seed of that noise.
        base: ``math.e`` for nats, 2 for bits.

    Example:
        >>> x = np.arange(100.0)[:, None] ** 1.5; y = np.sin(np.arange(100.0))[:, None]
        >>> bool(ksg_mi(x, y, k=3) < 0.2)                     # nearly independent
        True
        >>> relu = np.maximum(np.random.default_rng(2).normal(size=(2000, 2)), 0)   # half zeros
        >>> bool(abs(ksg_mi(relu[:, :1], relu[:, 1:])) < 0.05)  # independent, ties broken
        True
    """
    _check_params("ksg_mi", k, base, noise, seed)
    x, y = as_pair(x, y, min_samples=k + 1)
    if standardize:
        x, y = (a / np.where(a.std(0) > 0, a.std(0), 1.0) for a in (x, y))
    if noise > 0:
        rng = np.random.default_rng(seed)
        x, y = (a + noise * np.maximum(1.0, np.abs(a).mean(0)) * rng.standard_normal(a.shape) for a in (x, y))
    elif _has_ties(x) or _has_ties(y):
        warnings.warn("ksg_mi: x or y repeats values (ties), which biases KSG strongly downwards; "
                      "pass noise > 0 (the default 1e-10) to break them.", stacklevel=2)
    joint = np.hstack([x, y])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=-1)[0][:, -1]
    n_x, n_y = _strictly_within(x, eps), _strictly_within(y, eps)
    n = len(x)
    nats = digamma(n) + digamma(k) - np.mean(digamma(n_x + 1) + digamma(n_y + 1))
    return in_base(float(nats), base)


@ESTIMATORS.register("ksg")
class KSGMI(Estimator):
    """Batch-accumulating twin of :func:`ksg_mi`.

    Source: Kraskov, Stögbauer & Grassberger, Physical Review E 2004 (algorithm 1).

    Example:
        >>> rng = np.random.default_rng(1); x = rng.normal(size=(400, 2))
        >>> est = KSGMI(k=3)
        >>> est.update(x[:200], x[:200] ** 3); est.update(x[200:], x[200:] ** 3)
        >>> est.compute() == ksg_mi(x, x ** 3, k=3)
        True
    """

    source = 'Kraskov, Stögbauer & Grassberger, Physical Review E 2004 (algorithm 1)'

    function = staticmethod(ksg_mi)

    def __init__(
        self, *, k: int = 3, standardize: bool = True, noise: float = 1e-10, seed: int = 0, base: float = math.e
    ) -> None:
        _check_params(type(self).__name__, k, base, noise, seed)
        self.k, self.standardize, self.noise, self.seed, self.base = k, standardize, noise, seed, base
        super().__init__()
