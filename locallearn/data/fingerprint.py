"""What a run's data was: name, split sizes and a content hash of the training split.

Two runs are on the same data only if their fingerprints are equal; results stores group by
it and resume refuses a change of it.

Example:
    >>> from locallearn import data
    >>> ds = data.load("synthetic")
    >>> fp = fingerprint(ds)
    >>> fp["name"], fp["train_size"], len(fp["train_sha256"])
    ('synthetic', 420, 64)
    >>> fingerprint(ds) == fp
    True
    >>> train_sha256(ds, 100) == tensor_sha256(ds.x_train[:100], ds.y_train[:100])
    True
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from locallearn.data.dataset import Dataset


def tensor_sha256(*tensors: torch.Tensor) -> str:
    """SHA-256 over the dtype, shape and bytes of each tensor, in order."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


# Hashes already taken, per training-input tensor (held by identity and weakly: dropped with the tensor):
# train_size -> (the label tensor hashed with it, both tensors' in-place version counters, the hash).
_HASHES: WeakIdKeyDictionary = WeakIdKeyDictionary()


def train_sha256(ds: Dataset, train_size: int | None = None) -> str:
    """``tensor_sha256`` of the first ``train_size`` training inputs and labels (None: all of them), taken once
    per loaded dataset and size: a second call on the same tensors, unchanged in place, reads it back."""
    x, y = ds.x_train, ds.y_train
    n = len(x) if train_size is None else min(int(train_size), len(x))
    done = _HASHES.setdefault(x, {})
    if n in done:
        labels, x_version, y_version, digest = done[n]
        if labels() is y and (x_version, y_version) == (x._version, y._version):
            return digest
    digest = tensor_sha256(x[:n], y[:n])
    done[n] = (weakref.ref(y), x._version, y._version, digest)
    return digest


def fingerprint(ds: Dataset, *, data_dir: str | Path | None = None) -> dict[str, Any]:
    """``name``, ``data_dir`` (resolved, or None), the three split sizes and ``train_sha256``."""
    return {
        "name": ds.name,
        "data_dir": str(Path(data_dir).resolve()) if data_dir is not None else None,
        "train_size": len(ds.x_train),
        "val_size": len(ds.x_val),
        "test_size": len(ds.x_test),
        "train_sha256": train_sha256(ds),
    }
