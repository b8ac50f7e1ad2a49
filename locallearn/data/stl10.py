"""STL-10, the binary version (Coates, Lee & Ng 2011): ``stl10_binary/{train,test}_{X,y}.bin``.

``*_X.bin`` holds 96x96 RGB images as raw uint8 bytes, image after image, each stored
channel by channel in **column-major** order (MATLAB's layout: down the first column,
then the next); the loader returns them row-major as ``(N, 3, 96, 96)``. ``*_y.bin``
holds one byte per image, labels 1..10, returned as 0..9. The official splits are
5,000 training and 8,000 test images; the 100,000 ``unlabeled_X.bin`` images and the
10 predefined training folds (``fold_indices.txt``) are not used: ``val_size``
training images, drawn with ``split_seed``, form the validation split.

Example:
    >>> import tempfile, os, numpy as np
    >>> folder = os.path.join(tempfile.mkdtemp(), "stl10_binary"); os.makedirs(folder)
    >>> for split, n in (("train", 4), ("test", 2)):
    ...     np.zeros(n * 3 * 96 * 96, np.uint8).tofile(f"{folder}/{split}_X.bin")
    ...     np.full(n, 10, np.uint8).tofile(f"{folder}/{split}_y.bin")
    >>> ds = load_stl10(data_dir=os.path.dirname(folder), val_size=1)
    >>> tuple(ds.x_train.shape), ds.y_test.tolist()
    ((3, 3, 96, 96), [9, 9])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locallearn.data._files import DataFormatError, locate, require_files
from locallearn.data._image_splits import image_dataset
from locallearn.data.dataset import Dataset

_SIDE = 96
_IMAGE_BYTES = 3 * _SIDE * _SIDE
_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
_HOW_TO_GET = (
    "Get the binary version, http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz "
    "(described at https://cs.stanford.edu/~acoates/stl10/), and unpack it into the data folder "
    "(torchvision's STL10(root, download=True) leaves the same stl10_binary folder)."
)


def read_stl10_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 96, 96)`` uint8 (a row-major view of the column-major bytes) and labels 0..9."""
    raw = np.fromfile(images, dtype=np.uint8)
    if raw.size == 0 or raw.size % _IMAGE_BYTES:
        raise DataFormatError(
            f"{images}: {raw.size} bytes is not a whole number of {_IMAGE_BYTES}-byte 96x96x3 images; "
            "the file is truncated or not an STL-10 binary image file."
        )
    y = np.fromfile(labels, dtype=np.uint8)
    n = raw.size // _IMAGE_BYTES
    if len(y) != n:
        raise DataFormatError(f"{labels}: {len(y)} labels for the {n} images of {images.name}; expected one byte per image.")
    if y.min() < 1 or y.max() > 10:
        raise DataFormatError(f"{labels}: labels must lie in 1..10; found {y.min()}..{y.max()}.")
    x = raw.reshape(n, 3, _SIDE, _SIDE).transpose(0, 1, 3, 2)  # stored [channel, column, row]
    return x, y.astype(np.int64) - 1


def load_stl10(
    *, split_seed: int = 0, data_dir: str | Path | None = None, val_size: int | float = 500, train_size: int | None = None
) -> Dataset:
    """STL-10 from ``data_dir`` (holding ``stl10_binary/``, or being it): 4.5k / 500 / 8k by default.

    ``val_size``: training images held out for validation (0: none; a float: a fraction);
    ``train_size``: keep only that many of the remaining training images (None: all).
    """
    folder, _ = locate("stl10", data_dir, markers=("stl10_binary/train_X.bin", "train_X.bin"),
                       expected="stl10_binary/ (" + ", ".join(_FILES) + ")", how_to_get=_HOW_TO_GET)
    train_x, train_y, test_x, test_y = require_files("stl10", folder, _FILES, how_to_get=_HOW_TO_GET)
    x_train, y_train = read_stl10_split(train_x, train_y)
    x_test, y_test = read_stl10_split(test_x, test_y)
    return image_dataset("stl10", x_train, y_train, x_test, y_test, num_classes=10,
                         val_size=val_size, split_seed=split_seed, train_size=train_size)
