"""Step loggers: each stage's loss and learning rate every N updates, and every evaluation.

``StepLogger(path, every=N)`` writes a ``.csv`` or ``.jsonl`` file; ``TensorBoardLogger(log_dir,
every=N)`` writes TensorBoard event files (needs the optional ``tensorboard`` package:
``pip install locallearn[tensorboard]``). Both are Trainer callbacks.

Every N-th update writes one row: the mean loss of each stage over the updates since the
last row that trained it, and each stage's current learning rate. Only then are the losses
read: the engine keeps them on the device, and the sums between rows are device additions,
so a logger adds one wait for the device per N updates, not one per update. After each
evaluation a row gives every exit's accuracy. Under torchrun only rank 0 writes.

Resuming: the loggers keep their state in the trainer's checkpoints (the open window of
losses and how far the log got), so a resumed run continues the log exactly where the
checkpoint was taken: rows written after it (by a run that then stopped) are dropped, and
the resumed log equals the log of a run that never stopped.

Example:
    >>> import tempfile, pathlib
    >>> import locallearn as ll
    >>> ds = ll.data.load("synthetic")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "steps.csv"
    >>> _ = ll.train(ll.build_mlp(ds.input_shape, (8, 8), ds.num_classes), ds, epochs=1, batch_size=100, lr=0.05,
    ...              callbacks=[StepLogger(path, every=2)], progress=False)
    >>> print(path.read_text().splitlines()[0])
    step,epoch,event,split,loss_1,loss_2,lr_1,lr_2,accuracy_1,accuracy_2
    >>> [line.split(",")[:3] for line in path.read_text().splitlines()[1:]]
    [['2', '1', 'batch'], ['4', '1', 'batch'], ['5', '1', 'batch'], ['5', '1', 'evaluate'], ['5', '1', 'evaluate']]
"""

from __future__ import annotations

import csv
import io as text_io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from locallearn import distributed
from locallearn._params import check_number
from locallearn.callbacks import BatchEnd, Callback

if TYPE_CHECKING:
    from locallearn.trainer import Trainer


class WindowLogger(Callback):
    """The part every step logger shares: the window of losses between two rows, and the rows.

    A subclass implements ``open(trainer)``, ``write(row)`` and ``close()``; a row is a dict with
    ``step``, ``epoch``, ``event`` ("batch" or "evaluate") and ``loss``/``lr`` (per stage, numbered
    from 1) or ``split``/``accuracy`` (per exit).
    """

    def __init__(self, *, every: int = 50) -> None:
        self.every = check_number(every, name="every", owner=type(self).__name__, low=1, integer=True)
        self._sums: dict[int, Any] = {}  # stage (from 1) -> sum of its losses in the window (a device tensor or float)
        self._counts: dict[int, int] = {}
        self._active = False

    def open(self, trainer: "Trainer") -> None:
        raise NotImplementedError

    def write(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def on_fit_start(self, trainer: "Trainer") -> None:
        self._active = distributed.is_writer()
        if self._active:
            self.open(trainer)

    def on_batch_end(self, trainer: "Trainer", batch: BatchEnd) -> None:
        if not self._active:
            return
        for k, loss in zip(batch.stages, batch.losses):
            value = loss.detach() if isinstance(loss, torch.Tensor) else loss
            self._sums[k] = self._sums[k] + value if k in self._sums else value
            self._counts[k] = self._counts.get(k, 0) + 1
        if batch.step % self.every == 0:
            self._write_window(trainer, batch.step, batch.epoch)

    def _write_window(self, trainer: "Trainer", step: int, epoch: int) -> None:
        loss = {k: float(self._sums[k]) / self._counts[k] for k in sorted(self._sums)}  # the one read of the window
        lr = {k + 1: o.param_groups[0]["lr"] for k, o in enumerate(trainer.optimizers) if o is not None}
        self.write({"step": step, "epoch": epoch, "event": "batch", "loss": loss, "lr": lr})
        self._sums, self._counts = {}, {}

    def _finish(self, trainer: "Trainer") -> None:
        """After the run's last update: a row for the updates since the last row."""
        if trainer.epoch == trainer.total_epochs and self._sums:
            self._write_window(trainer, trainer.step, trainer.epoch)

    def on_evaluate(self, trainer: "Trainer", split: str, accuracy: list[float]) -> None:
        if self._active:
            self._finish(trainer)
            self.write({"step": trainer.step, "epoch": trainer.epoch, "event": "evaluate", "split": split, "accuracy": list(accuracy)})

    def on_epoch_end(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        if self._active:
            self._finish(trainer)

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self._active:
            self.close()

    def state_dict(self) -> dict[str, Any]:
        return {"window": [[k, float(self._sums[k]), self._counts[k]] for k in sorted(self._sums)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sums = {int(k): float(total) for k, total, _ in state["window"]}
        self._counts = {int(k): int(n) for k, _, n in state["window"]}


class StepLogger(WindowLogger):
    """Write a row every ``every`` updates and after each evaluation to ``path`` (``.csv`` or ``.jsonl``).

    A new run starts the file afresh; a resumed run (``Trainer.load_checkpoint``) cuts it back to
    where the checkpoint was taken and appends. CSV columns: ``step, epoch, event, split,
    loss_1..loss_S, lr_1..lr_S, accuracy_1..accuracy_S`` (S stages; a cell that does not apply is
    empty); a JSONL line holds the row as an object.
    """

    def __init__(self, path: str | Path, *, every: int = 50) -> None:
        super().__init__(every=every)
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"StepLogger writes .csv or .jsonl files; got {str(self.path)!r}.")
        self._file: text_io.TextIOBase | None = None
        self._bytes: int | None = None  # how far the log got (None: a new run, the file starts afresh)
        self._stages = 0

    def open(self, trainer: "Trainer") -> None:
        self._stages = len(trainer.net.stages)
        if self._file is not None:  # fit called again (trainers in turns): go on
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._bytes is None:
            self._file = open(self.path, "w", newline="")
            if self.path.suffix == ".csv":
                self._file.write(",".join(self._columns()) + "\n")
        else:
            if not self.path.is_file() or self.path.stat().st_size < self._bytes:
                raise ValueError(f"The step log {self.path} is shorter than the checkpoint says ({self._bytes} bytes); "
                                 "resume with the log the run wrote, or start a new run.")
            self._file = open(self.path, "r+", newline="")
            self._file.truncate(self._bytes)
            self._file.seek(self._bytes)
        self._mark()

    def _columns(self) -> list[str]:
        per_stage = lambda name: [f"{name}_{k}" for k in range(1, self._stages + 1)]  # noqa: E731
        return ["step", "epoch", "event", "split", *per_stage("loss"), *per_stage("lr"), *per_stage("accuracy")]

    def write(self, row: dict[str, Any]) -> None:
        if self.path.suffix == ".jsonl":
            self._file.write(json.dumps(row) + "\n")
        else:
            cells = {"step": row["step"], "epoch": row["epoch"], "event": row["event"], "split": row.get("split", "")}
            cells.update({f"loss_{k}": repr(v) for k, v in row.get("loss", {}).items()})
            cells.update({f"lr_{k}": repr(v) for k, v in row.get("lr", {}).items()})
            cells.update({f"accuracy_{k + 1}": repr(v) for k, v in enumerate(row.get("accuracy", []))})
            csv.DictWriter(self._file, self._columns(), restval="", lineterminator="\n").writerow(cells)
        self._mark()

    def _mark(self) -> None:
        self._file.flush()
        self._bytes = self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bytes": self._bytes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.close()
        self._bytes = state["bytes"]


class TensorBoardLogger(WindowLogger):
    """Write ``loss/stage_K`` and ``lr/stage_K`` every ``every`` updates and ``accuracy/SPLIT/exit_K`` after
    each evaluation to TensorBoard event files in ``log_dir`` (x-axis: the update count).

    Needs ``tensorboard`` (an optional extra). A resumed run drops the events written after the checkpoint
    (``SummaryWriter(purge_step=...)``), so its curves continue from it.
    """

    def __init__(self, log_dir: str | Path, *, every: int = 50) -> None:
        super().__init__(every=every)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError("TensorBoardLogger needs the optional tensorboard package: "
                              "pip install tensorboard (or locallearn[tensorboard]).") from error
        self._writer_class = SummaryWriter
        self.log_dir = str(log_dir)
        self._writer: Any = None
        self._resumed = False

    def open(self, trainer: "Trainer") -> None:
        if self._writer is None:
            purge = {"purge_step": trainer.step + 1} if self._resumed else {}
            self._writer = self._writer_class(self.log_dir, **purge)

    def write(self, row: dict[str, Any]) -> None:
        if row["event"] == "batch":
            for name in ("loss", "lr"):
                for k, value in row[name].items():
                    self._writer.add_scalar(f"{name}/stage_{k}", value, row["step"])
        else:
            for k, value in enumerate(row["accuracy"], start=1):
                self._writer.add_scalar(f"accuracy/{row['split']}/exit_{k}", value, row["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.close()
        self._resumed = True
