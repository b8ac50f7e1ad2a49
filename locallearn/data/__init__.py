"""Datasets as in-memory tensors with deterministic train/validation/test splits.

Example:
    >>> from locallearn import data
    >>> ds = data.load("digits")
    >>> ds.input_shape, ds.num_classes, len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    ((1, 8, 8), 10, 1797)
"""

from locallearn.data import augment
from locallearn.data.batches import BatchData, LoaderBatches, SeededSampler, TensorBatches, as_batches
from locallearn.data.dataset import Dataset, split_train_val_test
from locallearn.data.idx import IdxFormatError, read_idx
from locallearn.data.loaders import DATASETS, load, names

__all__ = ["DATASETS", "BatchData", "Dataset", "LoaderBatches", "SeededSampler", "TensorBatches", "as_batches", "augment", "IdxFormatError", "load", "names", "read_idx", "split_train_val_test"]
