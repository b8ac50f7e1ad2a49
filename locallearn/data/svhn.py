"""SVHN, the cropped-digits format (Netzer et al. 2011): ``train_32x32.mat``, ``test_32x32.mat``.

Each file is a MATLAB (v5) file holding ``X`` of shape ``(32, 32, 3, N)`` uint8 and ``y``
of shape ``(N, 1)`` with labels 1..10, where **10 stands for the digit 0**; the loader
maps it to 0, so a label is the digit it shows (as torchvision does). ``extra=True``
adds ``extra_32x32.mat`` (531,131 easier images) to the training set, as many SVHN
papers do; the default trains on the 73,257 ``train`` images. The files are read with
``scipy.io.loadmat``, which reads arrays only (a .mat file cannot carry code).

Example:
    >>> import tempfile, numpy as np, scipy.io
    >>> root = tempfile.mkdtemp()
    >>> for split, n in (("train", 6), ("test", 2)):
    ...     X = np.zeros((32, 32, 3, n), np.uint8)
    ...     scipy.io.savemat(f"{root}/{split}_32x32.mat", {"X": X, "y": np.full((n, 1), 10, np.uint8)})
    >>> ds = load_svhn(data_dir=root, val_size=2)
    >>> tuple(ds.x_train.shape), ds.y_test.tolist()  # label 10 is the digit 0
    ((4, 3, 32, 32), [0, 0])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locallearn.data._files import DataFormatError, locate, require_files
from locallearn.data._image_splits import image_dataset
from locallearn.data.dataset import Dataset

_HOW_TO_GET = (
    "Get the cropped-digits files from http://ufldl.stanford.edu/housenumbers/ "
    "(train_32x32.mat, test_32x32.mat, and extra_32x32.mat for extra=True) and put them in the data folder "
    "(torchvision's SVHN(root, download=True) leaves the same files in root)."
)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 (a view of ``X``) and digit labels 0..9 of one SVHN .mat file."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except Exception as error:  # scipy reports damaged files as ValueError, TypeError, OSError, MatReadError ...
        raise DataFormatError(
            f"{path}: not a readable SVHN .mat file (truncated or corrupt: {type(error).__name__}: {error})."
        ) from error
    if "X" not in mat or "y" not in mat:
        raise DataFormatError(f"{path}: expected the variables X and y of the SVHN cropped-digits format; found {sorted(k for k in mat if not k.startswith('__'))}.")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataFormatError(f"{path}: X must be uint8 of shape (32, 32, 3, N); found {x.dtype} {x.shape}.")
    if len(y) != x.shape[3]:
        raise DataFormatError(f"{path}: {x.shape[3]} images in X but {len(y)} labels in y; expected one label per image.")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataFormatError(f"{path}: labels must lie in 1..10 (10: the digit 0); found {y.min()}..{y.max()}.")
    return x.transpose(3, 2, 0, 1), np.where(y == 10, 0, y).astype(np.int64)


def load_svhn(
    *,
    split_seed: int = 0,
    data_dir: str | Path | None = None,
    val_size: int | float = 5000,
    train_size: int | None = None,
    extra: bool = False,
) -> Dataset:
    """SVHN from the .mat files in ``data_dir``; labels are digits 0..9 (the files' 10 is 0).

    ``val_size``: training images held out for validation (0: none; a float: a fraction);
    ``train_size``: keep only that many of the remaining training images (None: all);
    ``extra``: append ``extra_32x32.mat`` to the training set.
    """
    files = ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if extra else [])
    folder, _ = locate("svhn", data_dir, markers=("train_32x32.mat", "svhn/train_32x32.mat"),
                       expected=", ".join(files), how_to_get=_HOW_TO_GET)
    paths = require_files("svhn", folder, files, how_to_get=_HOW_TO_GET)
    x_train, y_train = read_svhn_mat(paths[0])
    x_test, y_test = read_svhn_mat(paths[1])
    if extra:
        x_extra, y_extra = read_svhn_mat(paths[2])
        x_train, y_train = np.concatenate([x_train, x_extra]), np.concatenate([y_train, y_extra])
    return image_dataset("svhn", x_train, y_train, x_test, y_test, num_classes=10,
                         val_size=val_size, split_seed=split_seed, train_size=train_size)
