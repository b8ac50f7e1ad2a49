"""Small synthetic problems for the checks: interleaved spirals, which no linear model separates.

Example:
    >>> x, y = spirals(6, seed=0)
    >>> tuple(x.shape), y.tolist()
    ((6, 2), [0, 1, 2, 0, 1, 2])
"""

from __future__ import annotations

import math

import torch

import locallearn as ll


def spirals(n: int, *, classes: int = 3, turns: float = 1.75, noise: float = 0.15, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points on ``classes`` interleaved spiral arms in the plane (radius <= 2), labels cycling 0..classes-1.

    A point of class c at radius r sits at angle ``2 pi turns r + 2 pi c / classes``, plus Gaussian
    noise of standard deviation ``noise * r``; a linear classifier gets about 40 % of 3 classes right.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    r = torch.rand(n, generator=g)
    angle = 2 * math.pi * turns * r + 2 * math.pi * y / classes
    x = 2 * r[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return x + noise * r[:, None] * torch.randn(n, 2, generator=g), y


def spirals_dataset(*, n_train: int = 600, n_val: int = 150, n_test: int = 600, seed: int = 0) -> ll.data.Dataset:
    """Spirals as a locallearn ``Dataset``; the test split is drawn with its own seed.

    Example:
        >>> spirals_dataset(n_train=30, n_val=6, n_test=12).input_shape
        (2,)
    """
    x, y = spirals(n_train + n_val, seed=seed)
    x_test, y_test = spirals(n_test, seed=seed + 1000)
    return ll.data.Dataset("spirals", x[:n_train], y[:n_train], x[n_train:], y[n_train:], x_test, y_test, num_classes=3)
