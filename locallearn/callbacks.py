"""Trainer callbacks: the events of a run, and the state a callback keeps across a checkpoint.

Events, in the order of one epoch: ``on_fit_start`` (once per ``fit``), ``on_batch_end`` after
every update, ``on_evaluate`` after each split is evaluated, ``on_epoch_end``; ``on_fit_end``.
An *update* is one ``train_step``: under ``simultaneous`` one per batch (every stage), under
``sequential`` one per batch of the stage in training, under ``decoupled`` one per stage per
batch. Under the ``pipeline`` schedule the updates run in worker processes, so
``on_batch_end`` is not called there (``Schedule.batch_events``); the epoch's losses reach
``on_epoch_end``.

A callback is a ``Callback`` subclass, or any object with some of these methods (the information
plane is one, so ``locallearn.info`` needs nothing of the engine). A callback with state (a
logger's window, a counter) returns it from ``state_dict`` as plain
values and tensors (checkpoints load with ``weights_only=True``); the Trainer saves it in every
checkpoint and hands it to ``load_state_dict`` on resume, so a resumed run's callbacks go on
exactly as if the run had never stopped.

Example:
    >>> import locallearn as ll
    >>> class CountUpdates(ll.Callback):
    ...     def __init__(self) -> None:
    ...         self.updates = 0
    ...     def on_batch_end(self, trainer, batch) -> None:
    ...         self.updates += 1
    ...     def state_dict(self) -> dict:
    ...         return {"updates": self.updates}
    ...     def load_state_dict(self, state: dict) -> None:
    ...         self.updates = state["updates"]
    >>> ds = ll.data.load("synthetic")
    >>> counter = CountUpdates()
    >>> _ = ll.train(ll.build_mlp(ds.input_shape, (8,), ds.num_classes), ds, epochs=2, batch_size=100, lr=0.05,
    ...              callbacks=[counter], progress=False)
    >>> counter.updates  # 420 training samples in batches of 100, twice
    10
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence



@dataclass(frozen=True)
class BatchEnd:
    """One update, as ``on_batch_end`` sees it.

    ``losses`` are the updated stages' losses in the order of ``stages``, as the engine returns
    them (device tensors or floats; NaN where the rule gave none): reading one (``float``) waits
    for the device, so a callback that reads them should do so every N updates, not every one.
    Data-parallel, ``size`` and ``losses`` are this process's shard's.
    """

    step: int  # updates done in the run so far, this one included (counted from 1, across epochs)
    epoch: int  # the epoch, numbered from 1
    stages: tuple[int, ...]  # the stages updated, numbered from 1
    losses: Sequence[Any]
    size: int  # samples in the batch


class Callback:
    """Override any of these events; each receives the trainer."""

    def on_fit_start(self, trainer: Any) -> None: ...

    def on_batch_end(self, trainer: Any, batch: BatchEnd) -> None: ...

    def on_evaluate(self, trainer: Any, split: str, accuracy: list[float]) -> None:
        """After ``split`` ("val" or "test") was evaluated during ``fit``: the accuracy of every exit."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this callback (plain values and tensors); none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned, on resume."""
