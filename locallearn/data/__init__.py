"""Datasets as in-memory tensors with deterministic train/validation/test splits.

Example:
    >>> from locallearn import data
    >>> ds = data.load("digits")
    >>> ds.input_shape, ds.num_classes, len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    ((1, 8, 8), 10, 1797)
"""

from locallearn.data import augment, fixtures
from locallearn.data._files import DataFormatError
from locallearn.data._safe_pickle import RefusingUnpickler, UnsafePickleError
from locallearn.data.batches import BatchData, LoaderBatches, SeededSampler, TensorBatches, as_batches
from locallearn.data.dataset import Dataset, split_train_val_test
from locallearn.data.fingerprint import fingerprint
from locallearn.data.idx import IdxFormatError, read_idx
from locallearn.data.fixtures import write_cifar_fixture
from locallearn.data.loaders import DATASETS, NO_FOLDER, load, names

__all__ = [
    "DATASETS", "NO_FOLDER", "BatchData", "DataFormatError", "Dataset", "IdxFormatError", "fingerprint", "LoaderBatches", "RefusingUnpickler",
    "SeededSampler", "TensorBatches", "UnsafePickleError", "as_batches", "augment", "fixtures", "load", "names",
    "read_idx", "split_train_val_test", "write_cifar_fixture",
]
