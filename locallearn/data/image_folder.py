"""Any class-per-folder image tree (the ImageFolder layout), read with Pillow into memory.

Two layouts are accepted under ``data_dir``:

- ``<class>/<image>`` for every class: one tree; a seeded, stratified ``test_fraction``
  of each class forms the test split;
- ``train/<class>/<image>`` and ``test/<class>/<image>`` (or ``val/``, as ImageNet names
  its held-out folder): the given train/test split.

Classes are the training folder's subfolder names, sorted; label ``k`` is the ``k``-th
name. Images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.ppm``, ``.tif``,
``.tiff``, ``.webp``; other files are skipped) are converted to RGB (``channels=3``) or
greyscale (``channels=1``) and, with ``size``, resized to ``size x size`` (bilinear);
without ``size`` they must all share one size. Everything is held in memory as float32
(a 50,000-image 32x32 RGB set is about 600 MB), so resize large images down.

Example:
    >>> import tempfile, os
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for cls in ("cat", "dog"):
    ...     os.makedirs(f"{root}/{cls}")
    ...     for i in range(5):
    ...         Image.new("RGB", (12, 10), (40 * i, 0, 0)).save(f"{root}/{cls}/{i}.png")
    >>> ds = load_image_folder(data_dir=root, size=8, val_size=2, test_fraction=0.2)
    >>> tuple(ds.x_train.shape), len(ds.x_val), ds.y_test.tolist()
    ((6, 3, 8, 8), 2, [0, 1])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locallearn.data._files import DataFormatError, data_root
from locallearn.data._image_splits import image_dataset
from locallearn.data.dataset import Dataset

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"})
_EXPECTED = "one subfolder of images per class (<class>/<image>), or train/<class>/<image> with test/<class>/<image>"
_HOW_TO_GET = "Arrange the images as torchvision's ImageFolder expects: one folder per class, named after it."


def class_folders(name: str, root: Path) -> list[Path]:
    """The class subfolders of ``root``, sorted by name; none is an error."""
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not folders:
        raise FileNotFoundError(f"{name}: {root} has no class subfolders; expected {_EXPECTED}. {_HOW_TO_GET}")
    return folders


def image_files(name: str, folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted; none is an error."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"{name}: class folder {folder} holds no images; expected files ending in {', '.join(sorted(IMAGE_SUFFIXES))}."
        )
    return files


def read_image(name: str, path: Path, *, size: int | None, channels: int) -> np.ndarray:
    """One image file as ``(channels, H, W)`` uint8, converted and resized with Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert({1: "L", 3: "RGB"}[channels])
            if size is not None:
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataFormatError(f"{name}: {path} is not a readable image (truncated or corrupt: {error}).") from error
    return pixels.transpose(2, 0, 1)


def read_images(name: str, files: list[Path], *, size: int | None, channels: int) -> np.ndarray:
    """``(N, channels, H, W)`` uint8 from a non-empty list of image files, written into one array."""
    first = read_image(name, files[0], size=size, channels=channels)
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, path in enumerate(files[1:], start=1):
        pixels = read_image(name, path, size=size, channels=channels)
        if pixels.shape != first.shape:
            raise DataFormatError(
                f"{name}: {path} is {pixels.shape[2]}x{pixels.shape[1]} pixels but {files[0]} is {first.shape[2]}x{first.shape[1]}; "
                "pass size= (e.g. size=32) to resize every image to one size."
            )
        out[i] = pixels
    return out


def read_tree(name: str, root: Path, classes: list[str] | None, *, size: int | None, channels: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images, labels and class names of one class-per-folder tree (``classes``: names fixed by the training tree)."""
    folders = class_folders(name, root)
    found = [f.name for f in folders]
    if classes is not None and not set(found) <= set(classes):
        raise DataFormatError(f"{name}: {root} has classes {sorted(set(found) - set(classes))} that the training folder lacks; expected a subset of {classes}.")
    classes = classes or found
    files, labels = [], []
    for folder in folders:
        members = image_files(name, folder)
        files += members
        labels += [classes.index(folder.name)] * len(members)
    return read_images(name, files, size=size, channels=channels), np.asarray(labels, dtype=np.int64), classes


def stratified_test_indices(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded ``test_fraction`` of every class (rounded, per class)."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.permutation(members)[: int(round(test_fraction * len(members)))])
    return np.sort(np.concatenate(picked))


def load_image_folder(
    *,
    split_seed: int = 0,
    data_dir: str | Path | None = None,
    size: int | None = None,
    channels: int = 3,
    val_size: int | float = 0.1,
    test_fraction: float = 0.2,
    train_size: int | None = None,
) -> Dataset:
    """A class-per-folder image tree from ``data_dir`` (``<class>/<image>``, or ``train/`` + ``test/`` trees), classes sorted by name.

    ``size``: resize every image to ``size x size`` (None: keep, all must match);
    ``channels``: 3 (RGB) or 1 (greyscale); ``val_size``: training images held out for
    validation (a float: a fraction; 0: none); ``test_fraction``: the share of each class
    held out for testing when ``data_dir`` is a single tree (ignored with ``train/``
    and ``test/``); ``train_size``: keep only that many remaining training images.
    """
    name = "image-folder"
    root = data_root(name, data_dir, expected=_EXPECTED, how_to_get=_HOW_TO_GET)
    if channels not in (1, 3):
        raise ValueError(f"{name}: channels must be 1 (greyscale) or 3 (RGB); got {channels!r}.")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{name}: size must be an int >= 1 (pixels per side) or None; got {size!r}.")
    held_out = next((root / sub for sub in ("test", "val") if (root / sub).is_dir()), None)
    if (root / "train").is_dir() and held_out is None:
        raise FileNotFoundError(f"{name}: {root} has train/ but no test/ (or val/) beside it; expected {_EXPECTED}.")
    if held_out is not None and not (root / "train").is_dir():
        raise FileNotFoundError(f"{name}: {root} has {held_out.name}/ but no train/ beside it; expected {_EXPECTED}.")
    if held_out is not None:
        x_train, y_train, classes = read_tree(name, root / "train", None, size=size, channels=channels)
        x_test, y_test, _ = read_tree(name, held_out, classes, size=size, channels=channels)
        if x_test.shape[2:] != x_train.shape[2:]:
            raise DataFormatError(f"{name}: {held_out} images are {x_test.shape[2:]} but {root / 'train'} images {x_train.shape[2:]}; pass size=.")
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"{name}: test_fraction must lie in (0, 1); got {test_fraction!r}.")
        x_all, y_all, classes = read_tree(name, root, None, size=size, channels=channels)
        test = stratified_test_indices(y_all, test_fraction, split_seed)
        train = np.setdiff1d(np.arange(len(y_all)), test)
        x_train, y_train, x_test, y_test = x_all[train], y_all[train], x_all[test], y_all[test]
    return image_dataset(name, x_train, y_train, x_test, y_test, num_classes=len(classes),
                         val_size=val_size, split_seed=split_seed, train_size=train_size)
