"""The estimator registry and the batch-accumulating class every estimator family shares.

Each family is a pure function plus a thin class (the torchmetrics functional/modular twins):
the class stores its keyword-only hyper-parameters, ``update`` collects batches, ``compute``
calls the function on everything collected, ``reset`` forgets the batches.

Example:
    >>> from locallearn.info import ESTIMATORS
    >>> est = ESTIMATORS.create("binning", bins=2, discrete_x=True)
    >>> est.update([0, 1], [0.1, 0.9]); est.update([0, 1], [0.2, 0.8])
    >>> round(est.compute(), 4)   # ln 2: the bin of y reveals x
    0.6931
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar

import numpy as np

from .._params import get_params
from .._registry import Registry
from ._checks import as_matrix

ESTIMATORS: Registry = Registry("estimator", group="locallearn.estimators")


class Estimator:
    """Accumulates ``(x, y)`` batches and applies ``function(x, y, **hyper_parameters)``.

    Subclasses set ``function`` and define a keyword-only ``__init__`` that stores each
    hyper-parameter under its own name, then calls ``super().__init__()`` (or take
    :func:`twin_init`'s, which reads the hyper-parameters off ``function``).
    """

    function: ClassVar[Callable[..., float]]
    #: What ``compute`` returns: "mutual information" (nats; bits with ``base=2``) or another measure of
    #: dependence (HSIC), which the information plane then shows in its own units.
    measure: ClassVar[str] = "mutual information"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._xs: list[np.ndarray] = []
        self._ys: list[np.ndarray] = []

    def update(self, x: Any, y: Any) -> None:
        """Add one batch of paired samples (one row per sample in both)."""
        x, y = as_matrix(x, name="x"), as_matrix(y, name="y")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same number of samples; got {len(x)} and {len(y)}.")
        for seen, new, name in ((self._xs, x, "x"), (self._ys, y, "y")):
            if seen and seen[0].shape[1] != new.shape[1]:
                raise ValueError(
                    f"Every batch of {name} must have {seen[0].shape[1]} features; got {new.shape[1]}."
                )
        self._xs.append(x)
        self._ys.append(y)

    def compute(self) -> float:
        """The estimate on all batches since the last ``reset``."""
        if not self._xs:
            raise RuntimeError(f"{type(self).__name__}.compute() needs at least one update() first.")
        return type(self).function(np.concatenate(self._xs), np.concatenate(self._ys), **get_params(self))

    def plane_point(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(I(X;T), I(T;Y))`` for a representation ``t`` (one row per sample) of inputs ``x`` with integer
        labels ``y``, with this estimator's hyper-parameters (the batches collected are left alone).

        By default every variable is a sample matrix, the labels one-hot rows; an estimator that
        takes discrete variables in a role of its own (binning, KDE) overrides this.

        Example:
            >>> from locallearn.info import ESTIMATORS
            >>> x = np.arange(8.0)[:, None]
            >>> ixt, ity = ESTIMATORS.create("hsic", sigma=1.0).plane_point(x, x, (x[:, 0] > 3).astype(int))
            >>> ixt > ity > 0
            True
        """
        onehot = np.eye(int(y.max()) + 1)[np.asarray(y, dtype=int)]
        return self._estimate(x, t), self._estimate(t, onehot)

    def _estimate(self, a: Any, b: Any, **overrides: Any) -> float:
        return float(type(self).function(a, b, **{**get_params(self), **overrides}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in get_params(self).items())
        return f"{type(self).__name__}({args})"


def twin_init(function: Callable[..., float], check: Callable[..., None]) -> Callable[..., None]:
    """An estimator class's ``__init__`` that takes exactly ``function``'s keyword-only hyper-parameters,
    with their defaults, so that the list is written once for the function and its class twin: it checks
    them with ``check(owner, **values)``, stores each under its own name and starts with no batches. Its
    signature is the function's (``inspect``, the listings and ``get_params`` read it).

    Example:
        >>> def plus(x, y, *, shift=0.0):
        ...     return float(x.sum() + y.sum()) + shift
        >>> class Plus(Estimator):
        ...     function = staticmethod(plus)
        ...     __init__ = twin_init(plus, lambda owner, **values: None)
        >>> Plus(shift=1.0), inspect.signature(Plus)
        (Plus(shift=1.0), <Signature (*, shift=0.0)>)
    """
    params = [p for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY]
    names = [p.name for p in params]

    def __init__(self: Estimator, **given: Any) -> None:
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} got an unexpected keyword argument {unknown[0]!r}; "
                            f"its hyper-parameters are: {', '.join(names)}.")
        values = {p.name: given.get(p.name, p.default) for p in params}
        check(type(self).__name__, **values)
        for name, value in values.items():
            setattr(self, name, value)
        Estimator.__init__(self)

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    __init__.__doc__ = f"The keyword-only hyper-parameters of :func:`{function.__name__}`, with its defaults."
    return __init__
