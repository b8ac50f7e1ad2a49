"""Run one benchmark cell: train it, then measure one step's saved-for-backward bytes.

Example:
    >>> from locallearn import data
    >>> from locallearn.bench.suites import Cell
    >>> from locallearn.experiment import RunSpec
    >>> cell = Cell("mlp", RunSpec(data="synthetic", widths=(16, 16), epochs=1, progress=False))
    >>> record = run_cell(cell, data.load("synthetic"))
    >>> len(record["test_accuracy"]), record["saved_bytes_peak"] > 0
    (2, True)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import torch

from locallearn import rules, schedules
from locallearn.bench.measure import SavedTensorMeter, peak_rss_bytes
from locallearn.provenance import load_average
from locallearn.bench.suites import Cell
from locallearn.compare import epoch_time, run_record
from locallearn.data import Dataset
from locallearn.experiment import RunSpec, make_trainer
from locallearn.net import LocalNet
from locallearn.schedules import TrainState
from locallearn.trainer import Callback, RunResult, Trainer


def step_memory(spec: RunSpec, ds: Dataset, *, net: LocalNet | None = None) -> dict[str, int]:
    """Saved-for-backward bytes of one training batch, through the schedule's own ``train_epoch``.

    A fresh net (same seed) and its trainer are built; the schedule then runs
    "epochs" of a single batch (the first ``batch_size`` training samples) with
    one epoch per stage, so a one-stage-at-a-time schedule is measured on every
    stage. Returns the largest ``peak`` and ``total`` of ``SavedTensorMeter``
    over those one-batch epochs. ``net`` replaces the net the spec names.
    """
    spec = dataclasses.replace(spec, epochs=1, progress=False)
    if net is None:
        trainer = make_trainer(spec, ds)
    else:
        trainer = Trainer(net, ds, rule=rules.create(spec.rule, **spec.rule_kw),
                          schedule=schedules.create(spec.schedule, **spec.schedule_kw), config=spec.train_config())
    net = trainer.net
    state = TrainState(
        net=net,
        rule=trainer.rule,
        optimizers=trainer.optimizers,
        x_train=ds.x_train[: spec.batch_size],
        y_train=ds.y_train[: spec.batch_size],
        batch_size=spec.batch_size,
        seed=spec.seed,
        epochs=1,
    )
    net.train()
    peak = total = 0
    excluded = [*net.parameters(), *net.buffers()]
    for epoch in range(trainer.total_epochs):
        state.epoch = epoch
        with SavedTensorMeter(exclude=excluded) as meter:
            trainer.schedule.train_epoch(state)
        peak, total = max(peak, meter.peak), max(total, meter.total)
    return {"saved_bytes_peak": peak, "saved_bytes_total": total}


class _Progress(Callback):
    """Advances the suite's progress bar by the stage-epochs each trainer epoch did."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(len(record.get("stages_trained", ())))


def _timed_evaluate(trainer: Trainer, spent: list[float]) -> None:
    """Make ``trainer.evaluate`` add the CPU time it takes to ``spent[0]`` (to leave it out of training time)."""
    evaluate = trainer.evaluate

    def timed(split: str, batch_size: int = 1024) -> list[float]:
        start = time.process_time()
        try:
            return evaluate(split, batch_size)
        finally:
            spent[0] += time.process_time() - start

    trainer.evaluate = timed  # type: ignore[method-assign]


def run_cells(cells: Sequence[Cell], ds: Dataset, *, bar: Any = None) -> list[dict[str, Any]]:
    """Train ``cells`` in turns, and return their records. A turn is one epoch of every stage:
    one trainer epoch, or, for a schedule that trains one stage at a time, as many trainer
    epochs as there are stages (consecutive epochs, so possibly of one stage).

    Taking turns epoch by epoch (``Trainer.fit(epochs=...)``; each trainer keeps its own
    random stream, so the results equal solo runs) means every cell's epochs see the
    same machine conditions, which is what makes their time ratios fair on a shared machine.
    Each turn's CPU time (``time.process_time``, evaluation left out) is recorded beside
    the trainer's wall-clock epoch times.
    """
    memory = [step_memory(c.spec, ds) for c in cells]
    trainers = [make_trainer(c.spec, ds, callbacks=[_Progress(bar)]) for c in cells]
    eval_cpu = [[0.0] for _ in cells]
    for trainer, spent in zip(trainers, eval_cpu):
        _timed_evaluate(trainer, spent)
    cpu: list[list[float]] = [[] for _ in cells]
    load_before, started = load_average(), time.time()
    while any(t.epoch < t.total_epochs for t in trainers):
        for i, (cell, trainer) in enumerate(zip(cells, trainers)):
            if trainer.epoch < trainer.total_epochs:
                before, eval_before = time.process_time(), eval_cpu[i][0]
                trainer.fit(epochs=trainer.total_epochs // cell.spec.epochs)
                cpu[i].append(time.process_time() - before - (eval_cpu[i][0] - eval_before))
    load_after = load_average()
    return [_record(c, t.result, m, cpu_s, load_before, load_after, started)
            for c, t, m, cpu_s in zip(cells, trainers, memory, cpu)]


def run_cell(cell: Cell, ds: Dataset, *, bar: Any = None) -> dict[str, Any]:
    """Train one cell and return its record: per-exit accuracies, epoch times, memory, load."""
    return run_cells([cell], ds, bar=bar)[0]


def per_epoch(record: dict[str, Any]) -> dict[str, float]:
    """Wall and CPU time of one epoch of every stage, from a record's per-epoch lists (``epoch_time`` of
    ``locallearn.compare``, the one definition: the median epoch, or for a schedule that trains one stage at a time
    the total divided by ``epochs``).

    Example:
        >>> per_epoch({"epochs": 1, "epoch_times_s": [1.0, 3.0], "epoch_cpu_times_s": [2.0]})  # one turn of 2 stages
        {'epoch_time_s': 4.0, 'epoch_cpu_s': 2.0}
        >>> per_epoch({"epochs": 3, "epoch_times_s": [1.0, 5.0, 2.0], "epoch_cpu_times_s": [1.0, 4.0, 2.0]})
        {'epoch_time_s': 2.0, 'epoch_cpu_s': 2.0}
    """
    epochs, wall = record["epochs"], record["epoch_times_s"]
    return {"epoch_time_s": epoch_time(wall, epochs),  # CPU times are per turn: the trainer epochs decide for both
            "epoch_cpu_s": epoch_time(record["epoch_cpu_times_s"], epochs, trainer_epochs=len(wall))}


def _record(cell: Cell, result: RunResult, memory: dict[str, int], cpu_s: list[float], load_before: list[float],
            load_after: list[float], started: float) -> dict[str, Any]:
    """The record every run has (``locallearn.compare.run_record``), keyed by the cell, with the cell's measurements."""
    record = {
        **run_record(cell.spec, result),
        "key": cell.key,
        "model_label": cell.model_label,
        "epoch_times_s": [r["epoch_time_s"] for r in result.history],
        "epoch_cpu_times_s": cpu_s,  # CPU seconds of each turn (see run_cells), evaluation left out
        "total_cpu_s": sum(cpu_s),
        "threads": torch.get_num_threads(),
        **memory,
        "peak_rss_bytes": peak_rss_bytes(),
        "load_before": load_before,
        "load_after": load_after,
        "started": started,
    }
    return {**record, **per_epoch(record)}
