"""Training data as a stream of ``(x, y)`` batches, one epoch at a time.

The engine never needs a whole training tensor: a schedule asks its source for
the batches of epoch ``e``. Two sources cover every input:

* ``TensorBatches``: in-memory tensors, shuffled in an order fixed by
  ``(seed, epoch)``, with an optional seeded batch transform (augmentation).
  A run resumed from a checkpoint therefore sees the same batches.
* ``LoaderBatches``: any iterable of ``(x, y)`` batches, such as a
  ``torch.utils.data.DataLoader``. Before each epoch it calls ``set_epoch(e)``
  on the loader's sampler when the sampler has one (``SeededSampler`` here,
  ``DistributedSampler`` in torch), so a seeded loader repeats its order too.

``SeededSampler`` draws the same permutation as ``TensorBatches``: a
``DataLoader(TensorDataset(x, y), batch_size=b, sampler=SeededSampler(len(x), seed=s))``
gives exactly the batches of ``TensorBatches(x, y, batch_size=b, seed=s)``.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> x, y = torch.arange(10.0)[:, None], torch.arange(10) % 2
    >>> memory = TensorBatches(x, y, batch_size=4, seed=1)
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=4, sampler=SeededSampler(10, seed=1))
    >>> streamed = as_batches(loader)
    >>> all(torch.equal(a[0], b[0]) for a, b in zip(memory.epoch(3), streamed.epoch(3)))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch
from torch.utils.data import Sampler

from locallearn.data.augment import BatchTransform


def epoch_order(n: int, *, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` samples in ``epoch``; it depends only on ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def augment_generator(*, seed: int, epoch: int) -> torch.Generator:
    """The generator of an epoch's augmentation draws (a stream apart from the shuffling)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch + 500_000_001)


def iterate_quietly(loader: Iterable[Any]) -> Iterator[Any]:
    """``iter(loader)`` that leaves torch's global random stream as it found it.

    Starting a ``DataLoader`` iterator draws a seed for its workers from torch's global
    generator; it is given back, so reading a loader does not change a seeded run's
    weight initialisation or dropout.
    """
    state = torch.get_rng_state()
    batches = iter(loader)
    torch.set_rng_state(state)
    return batches


class SeededSampler(Sampler[int]):
    """A ``DataLoader`` sampler whose order depends only on ``(seed, epoch)``; the trainer calls ``set_epoch``.

    Example:
        >>> sampler = SeededSampler(5, seed=0)
        >>> sampler.set_epoch(2)
        >>> sorted(sampler) == list(range(5))
        True
    """

    def __init__(self, num_samples: int, *, seed: int = 0) -> None:
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(epoch_order(self.num_samples, seed=self.seed, epoch=self.epoch).tolist())

    def __len__(self) -> int:
        return self.num_samples


class TensorBatches:
    """Shuffled mini-batches of in-memory tensors, optionally augmented.

    ``deterministic`` is True when there is no transform: the same sample always
    gives the same input, so a schedule may cache features computed from it.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        seed: int = 0,
        transform: BatchTransform | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(x) == 0:
            raise ValueError("The training split is empty; expected at least one sample to train on.")
        self.x, self.y = x, y
        self.batch_size, self.seed, self.transform = batch_size, seed, transform
        self.device = torch.device(device) if device is not None else x.device

    @property
    def deterministic(self) -> bool:
        return self.transform is None

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def batch_sizes(self) -> list[int]:
        """The size of every batch of an epoch, in order."""
        n, b = len(self.x), self.batch_size
        return [min(b, n - start) for start in range(0, n, b)]

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch``, moved to the source's device, transformed when a transform is set."""
        order = epoch_order(len(self.x), seed=self.seed, epoch=epoch).to(self.x.device)
        generator = augment_generator(seed=self.seed, epoch=epoch) if self.transform is not None else None
        non_blocking = self.device.type == "cuda"
        for start in range(0, len(self.x), self.batch_size):
            index = order[start : start + self.batch_size]
            x = self.x[index].to(self.device, non_blocking=non_blocking)
            if generator is not None:
                x = self.transform(x, generator)
            yield x, self.y[index].to(self.device, non_blocking=non_blocking)

    def describe(self) -> dict[str, Any]:
        return {"source": "tensors", "batch_size": self.batch_size, "augment": repr(self.transform) if self.transform else None}


class LoaderBatches:
    """Batches from any iterable of ``(x, y)`` pairs (a ``DataLoader``...), moved to ``device``."""

    deterministic = False  # a loader may transform, and its samples cannot be indexed for a cache

    def __init__(self, loader: Iterable[Any], *, device: torch.device | str = "cpu") -> None:
        self.loader = loader
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def batch_sizes(self) -> list[int]:
        """Batch sizes known ahead, for a ``DataLoader`` with a ``batch_size``; else a clear error."""
        size = getattr(self.loader, "batch_size", None)
        dataset = getattr(self.loader, "dataset", None)
        if size is None or dataset is None:
            raise ValueError(
                f"The batch sizes of a {type(self.loader).__name__} cannot be known before the epoch; "
                "give a DataLoader with batch_size=... or in-memory data."
            )
        n = len(dataset)
        sizes = [min(size, n - start) for start in range(0, n, size)]
        return sizes[:-1] if getattr(self.loader, "drop_last", False) and sizes[-1] < size else sizes

    @property
    def num_samples(self) -> int:
        return sum(self.batch_sizes())

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        non_blocking = self.device.type == "cuda"
        number = -1
        for number, batch in enumerate(iterate_quietly(self.loader)):
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(torch.is_tensor(t) for t in batch)):
                raise TypeError(
                    f"Batch {number} of the training data is a {type(batch).__name__}; expected a pair "
                    "(inputs, labels) of tensors, as a DataLoader over a TensorDataset gives."
                )
            x, y = batch
            yield x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)
        if number < 0:
            raise ValueError(f"The training data ({type(self.loader).__name__}) gave no batch in epoch {epoch + 1}; expected at least one.")

    def describe(self) -> dict[str, Any]:
        return {"source": type(self.loader).__name__, "batch_size": getattr(self.loader, "batch_size", None)}


def as_batches(data: Iterable[Any], *, device: torch.device | str = "cpu") -> TensorBatches | LoaderBatches:
    """A batch source from a ready source (returned as is) or any iterable of ``(x, y)`` batches."""
    if isinstance(data, (TensorBatches, LoaderBatches)):
        return data
    if not isinstance(data, Iterable):
        raise TypeError(
            f"Training data must be a locallearn Dataset or an iterable of (x, y) batches such as a DataLoader; "
            f"got a {type(data).__name__}."
        )
    if isinstance(data, Iterator):  # read once, and a generator may never end: no epoch could be bounded
        raise TypeError(
            f"Training data must be re-iterable, one pass per epoch (a DataLoader, a list of batches); got a "
            f"{type(data).__name__}, an iterator that is read once and may never end. Wrap it in a DataLoader or a list."
        )
    return LoaderBatches(data, device=device)


@dataclass(frozen=True)
class BatchData:
    """A data set given as batch iterables (``DataLoader``s), with what building a net needs.

    It stands where a ``Dataset`` does in ``locallearn.experiment`` and ``compare``, so a grid
    of rules can run on data that only exists as loaders. ``val`` / ``test`` may be ``None``
    (that split is then not evaluated).

    Example:
        >>> import torch
        >>> batches = [(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))]
        >>> BatchData("toy", batches, val=batches, test=None, num_classes=2).input_shape
        (2,)
    """

    name: str
    train: Iterable[Any]
    val: Iterable[Any] | None
    test: Iterable[Any] | None
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, read from the first training batch."""
        x, _ = next(iterate_quietly(self.train))
        return tuple(x.shape[1:])
