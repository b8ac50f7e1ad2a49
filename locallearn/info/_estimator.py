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

from typing import Any, Callable, ClassVar

import numpy as np

from .._params import get_params
from .._registry import Registry
from ._checks import as_matrix

ESTIMATORS: Registry = Registry("estimator", group="locallearn.estimators")


class Estimator:
    """Accumulates ``(x, y)`` batches and applies ``function(x, y, **hyper_parameters)``.

    Subclasses set ``function`` and define a keyword-only ``__init__`` that stores each
    hyper-parameter under its own name, then calls ``super().__init__()``.
    """

    function: ClassVar[Callable[..., float]]

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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in get_params(self).items())
        return f"{type(self).__name__}({args})"
