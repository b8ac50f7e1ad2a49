"""Binning (plug-in) mutual information, as Shwartz-Ziv & Tishby compute it on the information plane.

Each continuous variable is discretised per entry (equal-width bins on a range, or quantile bins),
each sample's row of bin indices becomes one symbol, and I = H(A) + H(B) - H(A, B) is computed from
the empirical frequencies. A variable flagged discrete keeps its distinct rows as symbols. For a
deterministic network on discrete inputs X and a layer T = h(X), ``binning_mi(x, t, discrete_x=True)``
is I(X;T) = H(T_binned) and ``binning_mi(t, y, discrete_y=True)`` is I(T;Y).

Known bias: the plug-in entropy underestimates by about (K - 1) / (2N) nats for K occupied symbols
and N samples, so I(X;T) saturates at ln N when every sample lands in its own bin.

Example:
    >>> round(binning_mi([0, 1, 2, 3], [3, 2, 1, 0], discrete_x=True, discrete_y=True, base=2), 6)
    2.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._params import check_choice, check_number
from ._checks import as_pair, check_base, in_base, row_labels
from ._estimator import ESTIMATORS, Estimator, twin_init


def _check_params(owner: str, *, bins: Any, value_range: Any, strategy: Any, base: Any, **_flags: Any) -> None:
    check_number(bins, name="bins", owner=owner, low=1, integer=True)
    check_choice(strategy, name="strategy", owner=owner, choices=("uniform", "quantile"))
    check_base(base, owner=owner)
    if value_range is None:
        return
    ok = isinstance(value_range, (tuple, list)) and len(value_range) == 2
    if not ok or not float(value_range[0]) < float(value_range[1]):
        raise ValueError(f"The 'value_range' parameter of {owner} must be None or (low, high) with low < high. "
                         f"Got {value_range!r} instead.")
    if strategy == "quantile":
        raise ValueError(f"The 'value_range' parameter of {owner} only applies to strategy='uniform'; "
                         f"quantile bins take their edges from the data. Got {value_range!r} instead.")


def bin_edges(a: np.ndarray, *, bins: int, value_range: tuple[float, float] | None, strategy: str) -> np.ndarray:
    """Inner bin edges shared by every entry of ``a`` (values beyond the range fall in the end bins).

    Example:
        >>> bin_edges(np.array([0.0, 1.0]), bins=4, value_range=None, strategy="uniform")
        array([0.25, 0.5 , 0.75])
    """
    if strategy == "quantile":
        edges = np.unique(np.quantile(a, np.linspace(0.0, 1.0, bins + 1)))
    else:
        low, high = value_range if value_range is not None else (a.min(), a.max())
        edges = np.linspace(low, high, bins + 1)
    return edges[1:-1]


def discrete_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information in nats between two arrays of symbols (one row per sample).

    Example:
        >>> round(discrete_mi(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])), 4)
        0.6931
    """
    a_sym, b_sym = row_labels(a.reshape(len(a), -1)), row_labels(b.reshape(len(b), -1))
    joint = row_labels(np.stack([a_sym, b_sym], axis=1))
    return _entropy(a_sym) + _entropy(b_sym) - _entropy(joint)


def _entropy(symbols: np.ndarray) -> float:
    p = np.bincount(symbols) / len(symbols)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def binning_mi(
    x: Any,
    y: Any,
    *,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
    strategy: str = "uniform",
    discrete_x: bool = False,
    discrete_y: bool = False,
    base: float = math.e,
) -> float:
    """Plug-in I(X;Y) after binning the variables not flagged discrete.

    Args:
        x, y: one row per sample; extra dimensions are flattened.
        bins: bins per entry (Shwartz-Ziv & Tishby: 30 on [-1, 1] for tanh layers).
        value_range: ``(low, high)`` for equal-width bins; default the data's min and max.
        strategy: ``"uniform"`` (equal width) or ``"quantile"`` (edges at quantiles of all entries,
            the data-adaptive choice ReLU layers need).
        discrete_x, discrete_y: take the variable's distinct rows as symbols instead of binning.
        base: ``math.e`` for nats, 2 for bits.

    Example:
        >>> t = np.array([[-0.9], [-0.8], [0.8], [0.9]])
        >>> round(binning_mi([0, 1, 2, 3], t, bins=2, discrete_x=True, base=2), 6)  # two bins: 1 bit
        1.0
    """
    _check_params("binning_mi", bins=bins, value_range=value_range, strategy=strategy, base=base)
    x, y = as_pair(x, y)

    def symbols(a: np.ndarray, discrete: bool) -> np.ndarray:
        if discrete:
            return a
        return np.digitize(a, bin_edges(a, bins=bins, value_range=value_range, strategy=strategy))

    return in_base(discrete_mi(symbols(x, discrete_x), symbols(y, discrete_y)), base)


@ESTIMATORS.register("binning")
class BinningMI(Estimator):
    """Batch-accumulating twin of :func:`binning_mi`; bins are set on all collected samples.

    Source: Shwartz-Ziv & Tishby, 2017, arXiv:1703.00810 (ravidziv/IDNNs).

    Example:
        >>> est = BinningMI(bins=2, discrete_x=True, base=2)
        >>> est.update([0, 1], [-0.9, 0.9]); est.update([2, 3], [-0.8, 0.8])
        >>> round(est.compute(), 6)
        1.0
    """

    source = 'Shwartz-Ziv & Tishby, 2017, arXiv:1703.00810 (ravidziv/IDNNs)'

    function = staticmethod(binning_mi)

    __init__ = twin_init(binning_mi, _check_params)

    def plane_point(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Shwartz-Ziv & Tishby: each distinct input is one symbol and T is binned, I(X;T) = H(bin(T));
        I(T;Y) with the labels as symbols."""
        return self._estimate(x, t, discrete_x=True, discrete_y=False), self._estimate(t, y, discrete_x=False, discrete_y=True)
