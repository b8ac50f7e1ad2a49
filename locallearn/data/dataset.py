"""The ``Dataset`` container and the deterministic split every loader uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test tensors of one dataset, already normalised.

    ``x_*`` are float32 of shape ``(n, *input_shape)``; ``y_*`` are 1-D int64 class
    indices in ``[0, num_classes)``. Checked at construction: one label per input, the
    same input shape in every split, a non-empty training split, finite inputs (no NaN
    or inf) in every split, labels 1-D int64 within the class range.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
        >>> Dataset("toy", x, y, x, y, x, y, num_classes=2).input_shape
        (2,)
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        if len(self.x_train) == 0:
            raise ValueError(f"{self.name}: the training split is empty; expected at least one training sample.")
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if y.dim() != 1 or y.dtype != torch.int64:
                hint = (" (flatten them with y.view(-1))." if y.dim() == 2 and y.shape[1] == 1 else
                        " (convert them with y.long())." if y.dim() == 1 and not (y.is_floating_point() or y.is_complex()) else ".")
                raise ValueError(
                    f"{self.name}: the {split} labels have shape {tuple(y.shape)} and dtype {y.dtype}; expected a 1-D "
                    "tensor of integer class indices (int64)" + hint
                )
            if x.is_floating_point() and not _all_finite(x):
                bad = int((~torch.isfinite(x)).sum())
                raise ValueError(
                    f"{self.name}: the {split} inputs hold {bad} non-finite values (NaN or inf); "
                    "expected finite numbers: clean or impute them first."
                )
            if x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"{self.name}: the {split} split has {x.shape[0]} inputs but {y.shape[0]} labels; "
                    "expected one label per input."
                )
            if x.shape[1:] != self.x_train.shape[1:]:
                raise ValueError(
                    f"{self.name}: {split} inputs have shape {tuple(x.shape[1:])}, "
                    f"train inputs {tuple(self.x_train.shape[1:])}; expected the same shape."
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
                raise ValueError(
                    f"{self.name}: label {bad} in the {split} split is outside the class range "
                    f"[0, {self.num_classes - 1}]; expected labels 0..num_classes-1."
                )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch dimension."""
        return tuple(self.x_train.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"Unknown split {name!r}; expected 'train', 'val' or 'test'.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every value of ``x`` is finite, without a full-size temporary for finite data.

    A NaN or an inf anywhere makes the sum non-finite, so a finite sum settles it in one
    reduction; only a non-finite sum (bad values, or finite ones overflowing) is checked
    element-wise (``torch.isfinite`` on the whole tensor would allocate about twice its size).
    """
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def split_train_val_test(
    n: int, labels: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seed-determined index split of ``n`` samples into train / val / test.

    Example:
        >>> import numpy as np
        >>> tr, va, te = split_train_val_test(100, np.arange(100) % 2, val_fraction=0.1, test_fraction=0.2, seed=0)
        >>> len(tr), len(va), len(te)
        (70, 10, 20)
    """
    index = np.arange(n)
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    val_size = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_size, stratify=labels[rest], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)
