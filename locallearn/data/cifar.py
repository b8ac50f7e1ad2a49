"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official archives, python or binary version.

Accepted layouts under ``data_dir`` (the archive unpacked there, as torchvision's
``download=True`` also leaves it), or ``data_dir`` being the unpacked folder itself:

- CIFAR-10 python: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch``
- CIFAR-10 binary: ``cifar-10-batches-bin/`` with ``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``
- CIFAR-100 python: ``cifar-100-python/`` with ``train``, ``test``
- CIFAR-100 binary: ``cifar-100-binary/`` with ``train.bin``, ``test.bin``

The python-version files are pickles; they are read with ``RefusingUnpickler``, which
admits only what a batch holds (numpy arrays and plain values), so a file carrying
code is refused and its code never runs. A binary record is one label byte (CIFAR-100:
coarse then fine) followed by 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each a
32x32 image in row-major order (the same pixel layout as the pickles' ``data`` rows).

Splits: the official 50,000 training / 10,000 test images; ``val_size`` training images
(seeded by ``split_seed``) form the validation split; every channel is normalised with
the training split's mean and standard deviation.

Example:
    >>> import tempfile
    >>> from locallearn.data.fixtures import write_cifar_fixture
    >>> root = write_cifar_fixture(tempfile.mkdtemp(), n_train=20, n_test=5)
    >>> ds = load_cifar10(data_dir=root, val_size=4)
    >>> tuple(ds.x_train.shape), len(ds.x_val), len(ds.x_test), ds.num_classes
    ((16, 3, 32, 32), 4, 5, 10)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from locallearn.data._files import DataFormatError, locate, require_files
from locallearn.data._image_splits import image_dataset
from locallearn.data._safe_pickle import load_pickle
from locallearn.data.dataset import Dataset

_PIXELS = 3 * 32 * 32
_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class _Variant:
    """Where one CIFAR variant's files live and what they hold."""

    name: str
    python_folder: str
    python_files: tuple[tuple[str, ...], tuple[str, ...]]  # (train files, test files)
    binary_folder: str
    binary_files: tuple[tuple[str, ...], tuple[str, ...]]
    archive: str  # stem of the official archives: <archive>-python.tar.gz, <archive>-binary.tar.gz

    def how_to_get(self) -> str:
        base = "https://www.cs.toronto.edu/~kriz/" + self.archive
        return (
            f"Get the python version ({base}-python.tar.gz) or the binary version ({base}-binary.tar.gz), "
            f"both listed at {_PAGE}, and unpack it into the data folder (torchvision's download=True leaves "
            f"the same {self.python_folder} folder)."
        )

    def expected(self) -> str:
        py_train, py_test = self.python_files
        bin_train, bin_test = self.binary_files
        return (
            f"{self.python_folder}/ ({', '.join(py_train + py_test)}) or "
            f"{self.binary_folder}/ ({', '.join(bin_train + bin_test)})"
        )


CIFAR10 = _Variant(
    "cifar10",
    "cifar-10-batches-py",
    (tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)),
    "cifar-10-batches-bin",
    (tuple(f"data_batch_{i}.bin" for i in range(1, 6)), ("test_batch.bin",)),
    "cifar-10",
)
CIFAR100 = _Variant(
    "cifar100",
    "cifar-100-python",
    (("train",), ("test",)),
    "cifar-100-binary",
    (("train.bin",), ("test.bin",)),
    "cifar-100",
)
_LABELS = {"cifar10": {"labels": ("labels", 10)}, "cifar100": {"fine": ("fine_labels", 100), "coarse": ("coarse_labels", 20)}}


def _check_labels(path: Path, labels: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise DataFormatError(f"{path}: {what} {bad} is outside 0..{num_classes - 1}; the file is corrupt or not a CIFAR batch.")
    return labels.astype(np.int64)


def read_python_batch(path: Path, *, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 3, 32, 32)`` uint8 and labels of one python-version batch file."""
    batch = load_pickle(path, what="CIFAR python-version batch")
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        found = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise DataFormatError(f"{path}: expected a CIFAR batch dict with 'data' and {label_key!r}; found {found}.")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        shape = getattr(data, "shape", None)
        raise DataFormatError(f"{path}: 'data' must be a uint8 array of shape (n, {_PIXELS}); found {type(data).__name__} {shape}.")
    labels = np.asarray(batch[label_key])
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DataFormatError(f"{path}: {label_key!r} must hold {len(data)} integer labels, one per image; found shape {labels.shape}.")
    return data.reshape(-1, 3, 32, 32), _check_labels(path, labels, num_classes, "label")


def read_binary_batch(path: Path, *, label_bytes: int, label_index: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 3, 32, 32)`` uint8 (a view into the file's bytes) and labels of one binary-version file."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + _PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataFormatError(
            f"{path}: {raw.size} bytes is not a whole number of {record}-byte records ({label_bytes} label byte(s) + {_PIXELS} pixels); "
            "the file is truncated or not a CIFAR binary batch."
        )
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), _check_labels(path, rows[:, label_index], num_classes, "label")


def _read_split(variant: _Variant, folder: Path, files: tuple[str, ...], *, binary: bool, label: str) -> tuple[np.ndarray, np.ndarray]:
    key, num_classes = _LABELS[variant.name][label]
    parts = []
    for path in require_files(variant.name, folder, files, how_to_get=variant.how_to_get()):
        if binary:  # CIFAR-100 records: coarse byte, fine byte
            index = 0 if variant.name == "cifar10" or label == "coarse" else 1
            parts.append(read_binary_batch(path, label_bytes=1 if variant.name == "cifar10" else 2, label_index=index, num_classes=num_classes))
        else:
            parts.append(read_python_batch(path, label_key=key, num_classes=num_classes))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def load_cifar(
    variant: _Variant,
    *,
    split_seed: int,
    data_dir: str | Path | None,
    val_size: int | float,
    train_size: int | None,
    labels: str,
) -> Dataset:
    """Read one CIFAR variant in whichever layout ``data_dir`` holds (python version first)."""
    if labels not in _LABELS[variant.name]:
        raise ValueError(f"{variant.name}: labels must be one of {', '.join(map(repr, _LABELS[variant.name]))}; got {labels!r}.")
    markers = (
        f"{variant.python_folder}/{variant.python_files[0][0]}",
        f"{variant.binary_folder}/{variant.binary_files[0][0]}",
        variant.python_files[0][0],
        variant.binary_files[0][0],
    )
    folder, marker = locate(variant.name, data_dir, markers=markers, expected=variant.expected(), how_to_get=variant.how_to_get())
    binary = marker.endswith(".bin")
    train_files, test_files = variant.binary_files if binary else variant.python_files
    x_train, y_train = _read_split(variant, folder, train_files, binary=binary, label=labels)
    x_test, y_test = _read_split(variant, folder, test_files, binary=binary, label=labels)
    num_classes = _LABELS[variant.name][labels][1]
    return image_dataset(
        variant.name, x_train, y_train, x_test, y_test,
        num_classes=num_classes, val_size=val_size, split_seed=split_seed, train_size=train_size,
    )


def load_cifar10(
    *, split_seed: int = 0, data_dir: str | Path | None = None, val_size: int | float = 5000, train_size: int | None = None
) -> Dataset:
    """CIFAR-10 from ``data_dir`` (python or binary version): 45k / 5k / 10k train / val / test by default.

    ``val_size``: training images held out for validation (0: none; a float: a fraction);
    ``train_size``: keep only that many of the remaining training images (None: all).
    """
    return load_cifar(CIFAR10, split_seed=split_seed, data_dir=data_dir, val_size=val_size, train_size=train_size, labels="labels")


def load_cifar100(
    *,
    split_seed: int = 0,
    data_dir: str | Path | None = None,
    val_size: int | float = 5000,
    train_size: int | None = None,
    labels: str = "fine",
) -> Dataset:
    """CIFAR-100 from ``data_dir``: 100 fine classes, or ``labels="coarse"`` for the 20 superclasses.

    Options as ``load_cifar10``.
    """
    return load_cifar(CIFAR100, split_seed=split_seed, data_dir=data_dir, val_size=val_size, train_size=train_size, labels=labels)
