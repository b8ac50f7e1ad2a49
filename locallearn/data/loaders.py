"""Named dataset loaders: ``digits`` (embedded), ``fashion-mnist``, ``mnist``, ``mnist1d``, ``synthetic``,
and the on-disk image formats ``cifar10``, ``cifar100``, ``svhn``, ``stl10`` and ``image-folder``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any
import numpy as np
import torch

from locallearn._registry import Registry
from locallearn.data.cifar import load_cifar10, load_cifar100
from locallearn.data.dataset import Dataset, split_train_val_test
from locallearn.data.idx import read_idx
from locallearn.data.image_folder import load_image_folder
from locallearn.data.stl10 import load_stl10
from locallearn.data.svhn import load_svhn

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_HOW_TO_GET = {
    "fashion-mnist": "Install it with `apt-get install -y dataset-fashion-mnist` (Debian) "
    "or pass --data-dir / data_dir= pointing at a folder holding the four IDX files.",
    "mnist": "MNIST is not bundled: pass --data-dir / data_dir= pointing at a folder holding the four IDX files.",
}


def _normalise(x_train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    """Scale every split with the training set's mean and standard deviation."""
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    return [torch.from_numpy(((x - mean) / std).astype(np.float32)) for x in (x_train, *others)]


def _from_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Dataset:
    train, val, test = split_train_val_test(
        len(x), y, val_fraction=val_fraction, test_fraction=test_fraction, seed=split_seed
    )
    xs = _normalise(x[train], x[val], x[test])
    ys = [torch.from_numpy(y[i].astype(np.int64)) for i in (train, val, test)]
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], num_classes=num_classes)


def load_digits(*, split_seed: int = 0, data_dir: str | Path | None = None) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images): 70 / 10 / 20 % train / val / test."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    return _from_arrays("digits", x, bunch.target, 10, val_fraction=0.1, test_fraction=0.2, split_seed=split_seed)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{folder}: missing {stem}.gz (or {stem}).")


def _load_idx_folder(name: str, folder: Path, *, split_seed: int, val_size: int = 5000) -> Dataset:
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 0:
        raise ValueError(f"The 'val_size' parameter of {name} must be an int >= 0. Got {val_size!r} instead.")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name}: data folder {folder} is a file; expected a folder holding the four IDX files.")
    if not folder.is_dir():
        raise FileNotFoundError(f"{name}: data folder {folder} does not exist. {_HOW_TO_GET[name]}")
    try:
        arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in _IDX_FILES.items()}
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{name}: {error} {_HOW_TO_GET[name]}") from error
    _check_idx_arrays(name, folder, arrays)
    x_full = arrays["train_images"].astype(np.float32)[:, None] / 255.0
    y_full = arrays["train_labels"].astype(np.int64)
    if len(x_full) != len(y_full):
        raise ValueError(f"{name}: {len(x_full)} training images but {len(y_full)} labels in {folder}.")
    if len(x_full) <= val_size:
        raise ValueError(
            f"{name}: {folder} holds {len(x_full)} training images; expected more than {val_size}, "
            f"since {val_size} of them form the validation split."
        )
    order = np.random.default_rng(split_seed).permutation(len(x_full))
    val, train = np.sort(order[:val_size]), np.sort(order[val_size:])
    x_test = arrays["test_images"].astype(np.float32)[:, None] / 255.0
    xs = _normalise(x_full[train], x_full[val], x_test)
    ys = [torch.from_numpy(a) for a in (y_full[train], y_full[val], arrays["test_labels"].astype(np.int64))]
    return Dataset(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], num_classes=10)


def _check_idx_arrays(name: str, folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Images of rank 3 (N, H, W), the same image size in both files, labels of rank 1 with an integer type."""
    for key, array in arrays.items():
        stem = _IDX_FILES[key]
        if key.endswith("labels"):
            if array.ndim != 1 or array.dtype.kind not in "ui":
                raise ValueError(f"{name}: {folder / stem} holds {array.dtype} labels of shape {array.shape}; expected one "
                                 "integer class index per image (an IDX file of unsigned bytes, rank 1).")
        elif array.ndim != 3:
            raise ValueError(f"{name}: {folder / stem} holds images of shape {array.shape}; expected rank 3 "
                             "(number of images, height, width), as in the MNIST files.")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(f"{name}: the training images are {arrays['train_images'].shape[1:]} and the test images "
                         f"{arrays['test_images'].shape[1:]} in {folder}; expected one image size.")


def load_fashion_mnist(*, split_seed: int = 0, data_dir: str | Path | None = None, val_size: int = 5000) -> Dataset:
    """Fashion-MNIST from IDX files (default: Debian's ``dataset-fashion-mnist``); 55k / 5k / 10k
    (``val_size=0``: 60k / 0 / 10k, every training image trained on, as in the local-loss paper; what
    needs a validation split, best-exit selection or exit calibration, then refuses the run)."""
    return _load_idx_folder("fashion-mnist", Path(data_dir or FASHION_MNIST_DIR), split_seed=split_seed, val_size=val_size)


def load_mnist(*, split_seed: int = 0, data_dir: str | Path | None = None, val_size: int = 5000) -> Dataset:
    """MNIST from a folder of IDX files given by ``data_dir``; 55k / 5k / 10k (``val_size`` as for Fashion-MNIST)."""
    if data_dir is None:
        raise FileNotFoundError(f"mnist: no data folder given. {_HOW_TO_GET['mnist']}")
    return _load_idx_folder("mnist", Path(data_dir), split_seed=split_seed, val_size=val_size)


def load_mnist1d(*, split_seed: int = 0, data_dir: str | Path | None = None) -> Dataset:
    """MNIST-1D, generated locally by the optional ``mnist1d`` package (``pip install mnist1d``)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("mnist1d: the optional package is not installed; run `pip install mnist1d`.") from error
    args = get_dataset_args()
    args.seed = split_seed
    raw = make_dataset(args)
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)[:, None, :]
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    return _from_arrays("mnist1d", x, y, 10, val_fraction=0.1, test_fraction=0.2, split_seed=split_seed)


def load_synthetic(*, split_seed: int = 0, data_dir: str | Path | None = None) -> Dataset:
    """A small, seed-determined Gaussian-blob problem (600 points, 16 features, 4 classes) for tests."""
    rng = np.random.default_rng(split_seed)
    centres = rng.normal(scale=2.0, size=(4, 16))
    y = np.repeat(np.arange(4), 150)
    x = centres[y] + rng.normal(size=(len(y), 16))
    return _from_arrays("synthetic", x, y, 4, val_fraction=0.1, test_fraction=0.2, split_seed=split_seed)


DATASETS: Registry[Dataset] = Registry("dataset", group="locallearn.datasets")
"""Dataset name -> loader ``(*, split_seed, data_dir, ...) -> Dataset``; ``locallearn datasets`` lists them."""
for _name, _loader in {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
    "mnist1d": load_mnist1d,
    "synthetic": load_synthetic,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "stl10": load_stl10,
    "image-folder": load_image_folder,
}.items():
    DATASETS.register(_name)(_loader)


#: The datasets that are embedded or generated: a ``data_dir`` given to them would be ignored, so it is refused.
NO_FOLDER = frozenset({"digits", "mnist1d", "synthetic"})


def names() -> list[str]:
    """The known dataset names."""
    return DATASETS.names()


def load(name: str, *, data_dir: str | Path | None = None, split_seed: int = 0, **options: Any) -> Dataset:
    """Load a dataset by name; ``split_seed`` fixes the train/val/test split (not the training seed).

    ``options`` go to the dataset's loader (e.g. ``val_size=0``, ``train_size=1000`` for the
    on-disk image sets, ``labels="coarse"`` for CIFAR-100, ``size=32`` for ``image-folder``);
    one it does not take is an error listing those it does.
    """
    loader = DATASETS.get(name)
    if data_dir is not None and name in NO_FOLDER:
        raise ValueError(f"{name} is not read from a folder (it is {'embedded' if name == 'digits' else 'generated'}), "
                         f"so --data-dir / data_dir={str(data_dir)!r} would be ignored; leave it out.")
    accepted = [p.name for p in inspect.signature(loader).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in ("split_seed", "data_dir")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"The dataset {name!r} has no option {', '.join(map(repr, unknown))}. Its options are: {', '.join(accepted) or 'none'}."
        )
    return loader(split_seed=split_seed, data_dir=data_dir, **options)
