"""Seeded validation split, per-channel normalisation and float conversion of uint8 image arrays.

Every on-disk image reader (CIFAR, SVHN, STL-10, image folders) hands its uint8 arrays
of shape ``(N, C, H, W)`` (views are fine: they are never copied whole) to
``image_dataset``, which draws the validation split from the training set, computes
each channel's mean and standard deviation on the training split alone, and writes the
normalised float32 tensors chunk by chunk (the only full-size copies made are the
float32 outputs themselves).

Example:
    >>> import numpy as np
    >>> x = np.arange(10 * 2 * 2 * 2, dtype=np.uint8).reshape(10, 2, 2, 2)
    >>> y = np.arange(10) % 2
    >>> ds = image_dataset("toy", x, y, x[:4], y[:4], num_classes=2, val_size=3, split_seed=0)
    >>> len(ds.x_train), len(ds.x_val), len(ds.x_test)
    (7, 3, 4)
    >>> ds.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-6  # every channel has zero mean on the training split
    tensor(True)
"""

from __future__ import annotations

import numpy as np
import torch

from locallearn.data.dataset import Dataset

_CHUNK = 4096  # images converted at a time: bounds the temporary uint8 copy


def resolve_val_size(name: str, val_size: int | float, n: int) -> int:
    """``val_size`` as a count: an int is a number of images, a float in [0, 1) a fraction of ``n``."""
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
        raise ValueError(f"{name}: val_size must be an int >= 0 (images) or a float in [0, 1) (a fraction); got {val_size!r}.")
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise ValueError(f"{name}: a fractional val_size must lie in [0, 1); got {val_size}.")
        return int(round(val_size * n))
    if val_size < 0:
        raise ValueError(f"{name}: val_size must be >= 0 (0: no validation split); got {val_size}.")
    return int(val_size)


def train_val_indices(
    name: str, n: int, *, val_size: int | float, train_size: int | None, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation indices into ``n`` training images, drawn with ``split_seed``."""
    k = resolve_val_size(name, val_size, n)
    if k >= n:
        raise ValueError(
            f"{name}: the training set holds {n} images but val_size={val_size} takes {k} of them; "
            "expected fewer, so that some remain for training (val_size=0: no validation split)."
        )
    if train_size is not None and (isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1):
        raise ValueError(f"{name}: train_size must be an int >= 1 or None (all the rest); got {train_size!r}.")
    if train_size is not None and train_size > n - k:
        raise ValueError(
            f"{name}: train_size={train_size} but only {n - k} training images remain after the {k}-image validation split; "
            "expected train_size <= that (or None for all of them)."
        )
    order = np.random.default_rng(split_seed).permutation(n)
    end = n if train_size is None else k + train_size
    return np.sort(order[k:end]), np.sort(order[:k])


def channel_stats(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and standard deviation (pixel units) of ``x[index]``, from 256-bin histograms."""
    channels = x.shape[1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(index), _CHUNK):
        chunk = x[index[start : start + _CHUNK]]
        for c in range(channels):
            counts[c] += np.bincount(chunk[:, c].ravel(), minlength=256)
    levels = np.arange(256, dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ levels / total
    var = counts @ levels**2 / total - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def normalised(x: np.ndarray, index: np.ndarray | None, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """float32 ``(x[index] - mean) / std`` per channel, written chunk by chunk into one new tensor."""
    if index is None:
        index = np.arange(len(x))
    out = torch.empty((len(index), *x.shape[1:]), dtype=torch.float32)
    for start in range(0, len(index), _CHUNK):
        out[start : start + _CHUNK] = torch.from_numpy(np.ascontiguousarray(x[index[start : start + _CHUNK]]))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out.sub_(torch.as_tensor(mean, dtype=torch.float32).view(shape)).div_(torch.as_tensor(std, dtype=torch.float32).view(shape))
    return out


def image_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    num_classes: int,
    val_size: int | float,
    split_seed: int,
    train_size: int | None = None,
) -> Dataset:
    """A ``Dataset`` from uint8 ``(N, C, H, W)`` arrays: seeded validation split, train-split channel statistics."""
    if x_train.dtype != np.uint8 or x_test.dtype != np.uint8:
        raise TypeError(f"{name}: image arrays must be uint8; got {x_train.dtype} and {x_test.dtype}.")
    train, val = train_val_indices(name, len(x_train), val_size=val_size, train_size=train_size, split_seed=split_seed)
    mean, std = channel_stats(x_train, train)
    labels = np.asarray(y_train, dtype=np.int64)
    return Dataset(
        name,
        normalised(x_train, train, mean, std),
        torch.from_numpy(labels[train]),
        normalised(x_train, val, mean, std),
        torch.from_numpy(labels[val]),
        normalised(x_test, None, mean, std),
        torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        num_classes=num_classes,
    )
