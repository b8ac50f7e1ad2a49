"""The schedule contract: when is each stage updated, and where do its inputs come from?

A schedule owns one epoch of training: it decides which stages run on which
inputs (a fresh forward pass, a cache, a buffer), and calls ``train_step`` for
the update. It never looks inside a rule; the rule never knows the schedule.

Example:
    >>> from locallearn import schedules
    >>> schedules.create("sequential").total_epochs(num_stages=3, epochs=2)
    6
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence

import torch

from locallearn._params import get_params
from locallearn._registry import Registry
from locallearn.data.batches import LoaderBatches, TensorBatches, epoch_order
from locallearn.engine import NonFiniteLossError, StepResult, read_losses, run_stages
from locallearn.net import LocalNet
from locallearn.rules.base import LocalRule

if TYPE_CHECKING:
    from locallearn.distributed import DataParallel

__all__ = ["NonFiniteLossError", "SCHEDULES", "Schedule", "TrainState", "epoch_losses", "mean_losses", "schedules_where", "through_frozen", "train_step", "update_stages"]


@dataclass
class TrainState:
    """What a schedule needs for one epoch: the net, the rule, one optimiser per stage
    (``None`` for a stage with nothing to train) and the training data.

    The data is a batch ``source`` (``locallearn.data.batches``); given only
    ``x_train``/``y_train`` tensors, the state builds the in-memory source itself.
    ``scaler`` and ``autocast_dtype`` carry the trainer's mixed-precision settings.
    With ``data_parallel`` (under torchrun) ``train_step`` trains this process's shard of each
    batch and averages the gradients across the processes. ``on_batch(stages, losses, size)``,
    when set, is called after every ``train_step`` (the Trainer's per-update events).
    """

    net: LocalNet
    rule: LocalRule
    optimizers: list[torch.optim.Optimizer | None]
    x_train: torch.Tensor | None = None
    y_train: torch.Tensor | None = None
    batch_size: int = 64
    seed: int = 0
    epochs: int = 1  # the configured epochs (per stage, for schedules that train one stage at a time)
    epoch: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    source: TensorBatches | LoaderBatches | None = None
    scaler: torch.amp.GradScaler | None = None
    autocast_dtype: torch.dtype | None = None
    data_parallel: "DataParallel | None" = None
    on_batch: Callable[[Sequence[int], list[Any], int], None] | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            if self.x_train is None or self.y_train is None:
                raise ValueError("A TrainState needs a batch source or x_train and y_train tensors.")
            self.source = TensorBatches(self.x_train, self.y_train, batch_size=self.batch_size, seed=self.seed)

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's training batches ``(x, y)``, from the source."""
        return self.source.epoch(self.epoch)

    def batches(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled mini-batches of in-memory tensors (a feature cache); the order depends only on
        ``(seed, epoch)`` and is the source's own order, so a resumed run repeats it."""
        # a TensorBatches handed in ready-made keeps its own seed and batch size
        seed, size = (self.source.seed, self.source.batch_size) if isinstance(self.source, TensorBatches) else (self.seed, self.batch_size)
        order = epoch_order(len(x), seed=seed, epoch=self.epoch).to(x.device)
        for start in range(0, len(x), size):
            index = order[start : start + size]
            yield x[index], y[index]


def train_step(
    state: TrainState, h: torch.Tensor, y: torch.Tensor, stages: Sequence[int], *, x: torch.Tensor | None = None
) -> list[torch.Tensor | float]:
    """One update of ``stages`` (consecutive indices) from their first input ``h``; returns each stage's
    loss (NaN where the rule gave none; ``update_stages`` returns the whole ``StepResult``)."""
    return update_stages(state, h, y, stages, x=x).losses


def update_stages(
    state: TrainState, h: torch.Tensor, y: torch.Tensor, stages: Sequence[int], *, x: torch.Tensor | None = None
) -> StepResult:
    """One update of ``stages`` (consecutive indices) from their first input ``h``.

    Zeroes the stages' gradients, runs ``locallearn.engine.run_stages`` (the same core as
    ``locallearn.backward``) and steps each stage's optimiser. ``x`` is the network input
    the batch came from, for rules that read it (``h`` itself when the stages start at 0).
    Returns the ``StepResult``: each stage's loss (NaN where the rule gave none; check them with
    ``epoch_losses``, which raises ``NonFiniteLossError`` on a NaN/inf loss) and block output.
    Data-parallel, ``h``, ``y`` and ``x`` are the global batch: this process trains on its shard,
    and the losses and outputs are those of its shard.
    """
    data_parallel = state.data_parallel
    if data_parallel is not None:
        h, y, x = data_parallel.shard(h, y, x)
    for k in stages:
        if state.optimizers[k] is not None:
            state.optimizers[k].zero_grad(set_to_none=True)
    result = run_stages(
        state.net, state.rule, h, y, stages, x=x, scaler=state.scaler,
        autocast_dtype=state.autocast_dtype,
        grad_sync=None if data_parallel is None else data_parallel.grad_sync,
    )
    for k in stages:
        optimizer = state.optimizers[k]
        if optimizer is not None:
            state.scaler.step(optimizer) if state.scaler is not None else optimizer.step()
    if state.scaler is not None:
        state.scaler.update()
    if state.on_batch is not None:
        state.on_batch(stages, result.losses, len(y))
    return result


@torch.no_grad()
def through_frozen(net: LocalNet, h: torch.Tensor, start: int, stop: int, chunk: int | None = None) -> torch.Tensor:
    """``h`` through the frozen blocks ``start..stop-1`` of ``net`` under ``no_grad`` and in eval mode
    (each block's mode restored after), in chunks of ``chunk`` rows (all at once when ``None``)."""
    for k in range(start, stop):
        block = net.stages[k].block
        was_training = block.training
        block.eval()
        try:
            h = torch.cat([block(part) for part in h.split(chunk)]) if chunk else block(h)
        finally:
            block.train(was_training)
    return h


class Schedule:
    """Base class of every schedule.

    What a schedule gives a rule is declared in flags, and ``check`` refuses a rule that needs
    more (its error names the registered schedules that do give it):

    - ``needs_local_rule``: the stages train apart, from detached inputs of the stage below, so a
      global rule (``detach_inputs=False``) cannot run;
    - ``carries_input``: every stage's ``StageOutput.x`` holds the network input (rules with
      ``needs_input`` read it);
    - ``carries_batch_transform``: every stage trains on the batch the rule's ``transform_batch``
      made (rules with ``transforms_batch``, such as Forward-Forward's positive and negative rows).
    """

    name: ClassVar[str]
    needs_local_rule: ClassVar[bool] = False
    carries_input: ClassVar[bool] = True
    carries_batch_transform: ClassVar[bool] = True
    # Under torchrun: True if the schedule trains data-parallel (every update through ``train_step`` on
    # global batches, nothing kept per process between updates); ``owns_process_group`` if the ranks are
    # the schedule's own workers instead (``pipeline``).
    data_parallel: ClassVar[bool] = False
    owns_process_group: ClassVar[bool] = False
    # True if every update runs in this process, so that ``TrainState.on_batch`` sees it (the Trainer's
    # ``on_batch_end`` and per-update LR steps); False for ``pipeline``, whose updates run in its workers.
    batch_events: ClassVar[bool] = True
    # True if what an epoch does depends on the run's total epoch count (freezeout anneals each stage's
    # rate towards a point of the whole run): a resumed run then cannot add epochs.
    plans_by_epoch_count: ClassVar[bool] = False

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        """How many trainer epochs a run of ``epochs`` (per stage) takes."""
        return epochs

    def check(self, rule: LocalRule) -> None:
        """Raise a clear error if this schedule cannot run ``rule`` (from the flags of both; a subclass
        that refuses more calls this first)."""
        if self.needs_local_rule and not rule.detach_inputs:
            raise ValueError(
                f"The {self.name!r} schedule trains each stage from detached inputs of the stage below, so it needs "
                f"a local rule; rule {rule.name!r} backpropagates across stages. Use {_giving('needs_local_rule', False)} for it."
            )
        if rule.needs_input and not self.carries_input:
            raise ValueError(
                f"Rule {rule.name!r} reads the network input at every stage, which the {self.name!r} schedule's later "
                f"stages never receive; use {_giving('carries_input', True)} for it."
            )
        if rule.transforms_batch and not self.carries_batch_transform:
            raise ValueError(
                f"Rule {rule.name!r} builds its own batches (transform_batch), which the {self.name!r} schedule cannot "
                f"hand to its later stages; use {_giving('carries_batch_transform', True)} for it."
            )

    def check_data_parallel(self) -> None:
        """Raise a clear error if this schedule cannot train data-parallel under torchrun (its flags say so)."""
        if not self.data_parallel and not self.owns_process_group:
            raise ValueError(
                f"The {self.name!r} schedule cannot train data-parallel under torchrun (it keeps per-process state "
                f"between updates, so the replicas would not train on the same global batches); use "
                f"{_giving('data_parallel', True)}, or run it in one process."
            )

    def train_epoch(self, state: TrainState) -> list[int]:
        """Train one epoch; return the indices of the stages that were updated."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return get_params(self)


SCHEDULES: Registry[Schedule] = Registry("schedule", group="locallearn.schedules")


def schedules_where(flag: str, value: bool) -> list[str]:
    """The registered schedules whose class flag ``flag`` is ``value``, sorted.

    Example:
        >>> "simultaneous" in schedules_where("carries_input", True), "pipeline" in schedules_where("carries_input", True)
        (True, False)
    """
    return sorted(name for name in SCHEDULES.names() if getattr(SCHEDULES.get(name), flag) == value)


def _giving(flag: str, value: bool) -> str:
    names = schedules_where(flag, value)
    return f"schedule {names[0]!r}" if len(names) == 1 else "one of the schedules " + ", ".join(map(repr, names))


def epoch_losses(
    state: TrainState, per_step: Sequence[Sequence[torch.Tensor | float]], *, first_stages: Sequence[int] | None = None
) -> list[list[float]]:
    """An epoch's per-step stage losses (``train_step``'s) read from the device at once, as floats.

    Raises ``NonFiniteLossError`` naming the epoch, step and stage (from 1) of the first NaN/inf loss.
    ``first_stages[i]``: index of step ``i``'s first stage (0 by default)."""
    return read_losses(per_step, first_stages=first_stages, context=f" at epoch {state.epoch + 1}", rule=state.rule.name)


def mean_losses(
    state: TrainState, per_batch: Sequence[Sequence[torch.Tensor | float]], *, first_stage: int = 0
) -> list[float]:
    """Column means of an epoch's per-batch stage losses (one host read; see ``epoch_losses``)."""
    rows = epoch_losses(state, per_batch, first_stages=[first_stage] * len(per_batch))
    return [float(sum(col) / len(col)) for col in zip(*rows)] if rows else []
