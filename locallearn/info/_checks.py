"""Input checks shared by the estimators: array shape, sample count, finiteness, and units.

Example:
    >>> as_matrix([1.0, 2.0, 3.0], name="x").shape
    (3, 1)
    >>> round(in_base(math.log(2.0), 2.0), 6)
    1.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._params import check_number


def as_matrix(a: Any, *, name: str) -> np.ndarray:
    """``a`` (array, tensor or list) as a float64 ``(n_samples, n_features)`` array.

    A 1-D input becomes one column; trailing dimensions (images, feature maps) are flattened.
    """
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array with one row per sample; got a scalar.")
    arr = arr.reshape(len(arr), -1)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one sample and one feature; got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values; every entry must be finite.")
    return arr


def as_pair(x: Any, y: Any, *, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both variables as matrices with the same number of rows, at least ``min_samples``."""
    x, y = as_matrix(x, name="x"), as_matrix(y, name="y")
    if len(x) != len(y):
        raise ValueError(
            f"x and y must have one row per sample and the same number of samples; got {len(x)} and {len(y)}."
        )
    if len(x) < min_samples:
        raise ValueError(f"At least {min_samples} samples are needed; got {len(x)}.")
    return x, y


def as_tensor(a: Any, *, name: str, check_finite: bool = True) -> torch.Tensor:
    """A floating ``(n_samples, n_features)`` tensor; tensors keep their autograd graph.

    ``check_finite=False`` skips the NaN/inf check, a read of the values back to the host (a device
    synchronisation): a training step passes it and lets its NaN loss check catch them instead."""
    if not isinstance(a, torch.Tensor):
        return torch.from_numpy(as_matrix(a, name=name))
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample; got shape {tuple(a.shape)}.")
    t = a.reshape(a.shape[0], -1)
    if not t.is_floating_point():
        t = t.double()
    if check_finite and not torch.isfinite(t.detach()).all():
        raise ValueError(f"{name} contains NaN or infinite values; every entry must be finite.")
    return t


def as_tensor_pair(
    x: Any, y: Any, *, min_samples: int = 2, check_finite: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both variables as 2-D tensors with the same number of rows, at least ``min_samples`` (``check_finite``
    as :func:`as_tensor`)."""
    x, y = as_tensor(x, name="x", check_finite=check_finite), as_tensor(y, name="y", check_finite=check_finite)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have one row per sample and the same number of samples; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )
    if x.shape[0] < min_samples:
        raise ValueError(f"At least {min_samples} samples are needed; got {x.shape[0]}.")
    return x, y


def row_labels(a: np.ndarray) -> np.ndarray:
    """One integer symbol per sample: equal rows share a symbol."""
    return np.unique(a, axis=0, return_inverse=True)[1].ravel()


def check_base(base: Any, *, owner: str) -> float:
    """The logarithm base of the result: ``math.e`` for nats, 2 for bits."""
    return check_number(base, name="base", owner=owner, low=1.0, low_inclusive=False)


def in_base(nats: float, base: float) -> float:
    """Convert a value in nats to the logarithm base ``base``."""
    return nats / math.log(base)
