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

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import torch

from locallearn._params import get_params
from locallearn._registry import Registry
from locallearn.net import LocalNet
from locallearn.rules.base import LocalRule, StageOutput


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


@dataclass
class TrainState:
    """What a schedule needs for one epoch: the net, the rule, one optimiser per stage
    (``None`` for a stage with nothing to train) and the training tensors."""

    net: LocalNet
    rule: LocalRule
    optimizers: list[torch.optim.Optimizer | None]
    x_train: torch.Tensor
    y_train: torch.Tensor
    batch_size: int
    seed: int
    epochs: int = 1  # the configured epochs (per stage, for schedules that train one stage at a time)
    epoch: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def batches(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled mini-batches; the order depends only on ``(seed, epoch)``, so a resumed run repeats it."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), self.batch_size):
            index = order[start : start + self.batch_size]
            yield x[index], y[index]

    def num_batches(self, n: int) -> int:
        return math.ceil(n / self.batch_size)


def train_step(
    state: TrainState, h: torch.Tensor, y: torch.Tensor, stages: Sequence[int]
) -> list[float]:
    """One update of ``stages`` (consecutive indices) from their first input ``h``.

    Under a local rule (``detach_inputs``) each block's input is detached and each
    stage's loss is backpropagated as soon as it is computed: the stages' graphs are
    disjoint, so the gradients are those of the summed loss, but only one stage's
    activations are alive at a time. A global rule's losses are summed and
    backpropagated once through the whole chain. Returns each stage's loss (NaN
    where the rule gave none); raises ``NonFiniteLossError`` on a NaN/inf loss.
    """
    net, rule = state.net, state.rule
    for k in stages:
        if state.optimizers[k] is not None:
            state.optimizers[k].zero_grad(set_to_none=True)
    values: list[float] = []
    pending: list[torch.Tensor] = []
    last = len(net.stages) - 1
    for k in stages:
        stage = net.stages[k]
        h_in = h.detach() if rule.detach_inputs else h
        h_out = stage.block(h_in)
        out = StageOutput(index=k, is_last=k == last, stage=stage, h_in=h_in, h_out=h_out, logits=stage.head(h_out))
        loss = rule.stage_loss(out, y)
        values.append(math.nan if loss is None else loss.item())
        if loss is not None:
            if not math.isfinite(values[-1]):
                raise NonFiniteLossError(
                    f"The loss of stage {k} became {values[-1]} at epoch {state.epoch} (rule {rule.name!r}). "
                    "Lower the learning rate, check the inputs for NaN, or add gradient clipping."
                )
            if rule.detach_inputs:
                _local_backward(loss, rule, k)
            else:
                pending.append(loss)
        h = h_out
    if pending:
        (torch.stack(pending).sum() if len(pending) > 1 else pending[0]).backward()
    for k in stages:
        if state.optimizers[k] is not None:
            state.optimizers[k].step()
    return values


def require_local_rule(schedule: str, rule: LocalRule) -> None:
    """Raise the standard error when a schedule that trains stages apart gets a global rule."""
    if not rule.detach_inputs:
        raise ValueError(
            f"The {schedule!r} schedule trains each stage from detached inputs of the stage below, so it needs "
            f"a local rule; rule {rule.name!r} backpropagates across stages. Use schedule 'simultaneous' for it."
        )


def _local_backward(loss: torch.Tensor, rule: LocalRule, stage: int) -> None:
    try:
        loss.backward()
    except RuntimeError as error:
        if "second time" not in str(error):
            raise
        raise RuntimeError(
            f"Rule {rule.name!r} is not local: it declares detach_inputs=True, but the loss of stage {stage} "
            "reaches into an earlier stage's graph. A local rule's loss may depend only on its own stage."
        ) from error


class Schedule:
    """Base class of every schedule."""

    name: ClassVar[str]

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        """How many trainer epochs a run of ``epochs`` (per stage) takes."""
        return epochs

    def check(self, rule: LocalRule) -> None:
        """Raise a clear error if this schedule cannot run ``rule``."""

    def train_epoch(self, state: TrainState) -> list[int]:
        """Train one epoch; return the indices of the stages that were updated."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return get_params(self)


SCHEDULES: Registry[Schedule] = Registry("schedule")


def mean_losses(per_batch: list[list[float]]) -> list[float]:
    """Column means of per-batch stage losses."""
    return [float(sum(col) / len(col)) for col in zip(*per_batch)] if per_batch else []
