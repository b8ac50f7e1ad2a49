"""A cache of every exit's logits for one data split, so policies run offline.

Example:
    >>> import torch
    >>> cache = ExitLogits(torch.zeros(3, 5, 10), torch.zeros(5, dtype=torch.long), split="val")
    >>> cache.n_exits, cache.n_samples, cache.n_classes
    (3, 5, 10)
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from locallearn import io

_HASH_MULTIPLIERS = np.random.default_rng(20240607).integers(1, 2**63, size=4096, dtype=np.uint64) | np.uint64(1)


@dataclasses.dataclass(frozen=True)
class ExitLogits:
    """Per-exit logits ``[K, N, C]`` and labels ``[N]`` of one named split.

    ``split`` names where the rows came from ("val", "test", ...). Calibration
    refuses a split named "test"; ``evaluate`` refuses rows that were seen at
    calibration (see :meth:`row_keys`).
    """

    logits: torch.Tensor
    labels: torch.Tensor
    split: str

    def __post_init__(self) -> None:
        if not isinstance(self.logits, torch.Tensor) or self.logits.dim() != 3:
            shape = tuple(self.logits.shape) if isinstance(self.logits, torch.Tensor) else type(self.logits).__name__
            raise ValueError(f"ExitLogits.logits must be a tensor of shape [exits, samples, classes]. Got {shape} instead.")
        if not isinstance(self.labels, torch.Tensor) or self.labels.shape != self.logits.shape[1:2]:
            shape = tuple(self.labels.shape) if isinstance(self.labels, torch.Tensor) else type(self.labels).__name__
            raise ValueError(
                f"ExitLogits.labels must be a tensor of shape [{self.logits.shape[1]}] (one label per sample). "
                f"Got {shape} instead."
            )
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"ExitLogits.split must be a non-empty string such as 'val'. Got {self.split!r} instead.")
        object.__setattr__(self, "logits", self.logits.detach().float().cpu())
        object.__setattr__(self, "labels", self.labels.detach().long().cpu())

    @property
    def n_exits(self) -> int:
        return self.logits.shape[0]

    @property
    def n_samples(self) -> int:
        return self.logits.shape[1]

    @property
    def n_classes(self) -> int:
        return self.logits.shape[2]

    def subset(self, index: torch.Tensor, *, split: str | None = None) -> ExitLogits:
        """The rows ``index`` (a long or bool tensor), optionally under a new split name."""
        return ExitLogits(self.logits[:, index], self.labels[index], split or self.split)

    def row_keys(self) -> np.ndarray:
        """A 64-bit fingerprint of every row (its logits at every exit and its label).

        Two rows get the same key only if their bytes are equal (up to hash collisions),
        so a calibrated :class:`Thresholds` can tell whether a split shares rows with
        the data it was calibrated on.
        """
        rows = torch.cat([self.logits.permute(1, 0, 2).reshape(self.n_samples, -1), self.labels[:, None].float()], 1)
        bits = rows.contiguous().numpy().view(np.uint32).astype(np.uint64)
        width = bits.shape[1]
        reps = -(-width // len(_HASH_MULTIPLIERS))
        mult = np.tile(_HASH_MULTIPLIERS, reps)[:width]
        with np.errstate(over="ignore"):
            return (bits * mult).sum(axis=1, dtype=np.uint64)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically through ``locallearn.io`` (0644, the old file or the new one, never a part)."""
        io.save_tensors(path, {"logits": self.logits, "labels": self.labels, "split": self.split})

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExitLogits:
        """Read a cache written by :meth:`save`."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        return cls(data["logits"], data["labels"], data["split"])
