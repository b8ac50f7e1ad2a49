"""``decoupled``: decoupled greedy learning in one process, with replay buffers between stages.

Each stage boundary holds a :class:`ReplayBuffer` of detached block outputs and
their labels. Stage ``k`` never gets a fresh forward pass of the stages below: it
trains from a batch sampled out of its own buffer, and pushes the output of that
training forward pass into the buffer of stage ``k + 1``. Stage 0's buffer is fed
by the data: one new mini-batch per *tick*; an epoch is one pass of the data.

Within a tick the stages act in order ``0, 1, ..., L-1``, so stage ``k`` may
consume the batch stage ``k - 1`` produced in the same tick. Sampling is
"least reused, newest first" and a batch is dropped once used ``max_uses``
times; a full buffer evicts its oldest batch. A stage with ``speed < 1``
updates on only that fraction of the ticks (a slow worker), so the stage above
it sees fewer new batches and reuses old ones, or waits when none is left.

With ``capacity=1``, ``max_uses=1`` and equal speeds every stage trains on the
batch the stage below has just produced, with the parameters it had before its
own update: exactly the ``simultaneous`` schedule (same parameters for the same
seed). Any larger capacity or reuse cap also reduces to it while all speeds are
equal, since a fresh batch is always there and is always sampled first.

Buffers and speed counters start empty at every epoch, so an epoch depends only
on the parameters, the optimiser states, the seed and the epoch index, and a run
resumed from a checkpoint repeats the uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from locallearn._params import check_choice, check_number
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState, epoch_losses, update_stages


class ReplayBuffer:
    """Batches ``(h, y)`` waiting for a stage; "least reused, newest first", at most ``max_uses`` uses each.

    Example:
        >>> import torch
        >>> buffer = ReplayBuffer(capacity=2, max_uses=2)
        >>> for i in range(3):
        ...     buffer.push(torch.full((1,), float(i)), torch.tensor([i]))
        >>> [int(buffer.sample()[1]) for _ in range(4)]  # batch 0 was evicted; newest first, then reuse
        [2, 1, 2, 1]
        >>> buffer.sample() is None  # every batch has been used twice
        True
    """

    def __init__(self, *, capacity: int, max_uses: int) -> None:
        self.capacity = check_number(capacity, name="capacity", owner="ReplayBuffer", low=1, integer=True)
        self.max_uses = check_number(max_uses, name="max_uses", owner="ReplayBuffer", low=1, integer=True)
        self._items: list[list] = []  # [batch, uses, serial], oldest first
        self._serial = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, *batch: torch.Tensor) -> None:
        """Add a batch (``h, y`` and anything that travels with them); when full, the oldest is evicted."""
        if len(self._items) == self.capacity:
            self._items.pop(0)
        self._items.append([batch, 0, self._serial])
        self._serial += 1

    def sample(self) -> tuple[torch.Tensor, ...] | None:
        """The least-used batch (the newest among equals), or ``None`` when the buffer is empty."""
        if not self._items:
            return None
        index = min(range(len(self._items)), key=lambda i: (self._items[i][1], -self._items[i][2]))
        item = self._items[index]
        item[1] += 1
        if item[1] >= self.max_uses:
            self._items.pop(index)
        return item[0]


@SCHEDULES.register("decoupled")
class Decoupled(Schedule):
    """Decoupled greedy learning (Belilovsky et al.) simulated in one process, with replay buffers.

    Args:
        capacity: batches each stage's input buffer holds (the oldest is evicted when full).
        max_uses: how many times a buffered batch may be trained on (1: no reuse).
        speeds: per-stage update rate in (0, 1] (``None``: all 1). A stage with speed
            ``s`` updates on a fraction ``s`` of the ticks: a slow worker.
        speed_mode: ``"ratio"`` updates exactly every ``1/s``-th tick (deterministic
            credit counter); ``"random"`` updates with probability ``s`` per tick, drawn
            from a generator seeded by the run's seed and the epoch.

    The epoch record gets ``updates`` (updates per stage) and ``starved`` (ticks a stage
    could have updated but found its buffer empty) besides ``train_loss``.

Defaults that differ from the authors' code (eugenium/DGL ``cifar_buffer.py``): ``capacity=8`` and
    ``max_uses=2``, where theirs takes the buffer size from ``--buffer`` (the paper compares several) and
    lets a batch be reused without limit (``--max-buffer-reuse`` inf); the "least reused, newest first"
    sampling is their ``priority_lifo``.

        Source: Belilovsky, Eickenberg & Oyallon, ICML 2020, 'Decoupled Greedy Learning of CNNs' (eugenium/DGL, buffer_experiments).

    Example:
        >>> from locallearn import data, build_mlp, Trainer, TrainConfig
        >>> ds = data.load("synthetic")
        >>> net = build_mlp(ds.input_shape, (16, 16), ds.num_classes)
        >>> schedule = Decoupled(capacity=8, max_uses=2, speeds=(0.5, 1.0))
        >>> result = Trainer(net, ds, schedule=schedule, config=TrainConfig(epochs=1, progress=False)).fit()
        >>> updates = result.history[-1]["updates"]
        >>> updates[0] < updates[1]  # the slow stage 0 updated half as often; stage 1 reused its batches
        True
    """

    source = "Belilovsky, Eickenberg & Oyallon, ICML 2020, 'Decoupled Greedy Learning of CNNs' (eugenium/DGL, buffer_experiments)"
    needs_local_rule = True

    def __init__(
        self,
        *,
        capacity: int = 8,
        max_uses: int = 2,
        speeds: Sequence[float] | None = None,
        speed_mode: str = "ratio",
    ) -> None:
        owner = "Decoupled"
        self.capacity = check_number(capacity, name="capacity", owner=owner, low=1, integer=True)
        self.max_uses = check_number(max_uses, name="max_uses", owner=owner, low=1, integer=True)
        if speeds is not None:
            speeds = tuple(check_number(s, name="speeds", owner=owner, low=0.0, high=1.0, low_inclusive=False) for s in speeds)
        self.speeds = speeds
        self.speed_mode = check_choice(speed_mode, name="speed_mode", owner=owner, choices=("ratio", "random"))

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        if self.speeds is not None and len(self.speeds) != num_stages:
            raise ValueError(
                f"The 'speeds' parameter of Decoupled gives {len(self.speeds)} speeds but the network has "
                f"{num_stages} stages; give one speed per stage."
            )
        return epochs

    def train_epoch(self, state: TrainState) -> list[int]:
        num_stages = len(state.net.stages)
        speeds = self.speeds or (1.0,) * num_stages
        buffers = [ReplayBuffer(capacity=self.capacity, max_uses=self.max_uses) for _ in range(num_stages)]
        generator = torch.Generator().manual_seed(state.seed * 1_000_003 + state.epoch + 7_919)
        credit = [0.0] * num_stages
        updates: list[tuple[int, torch.Tensor | float]] = []  # (stage, loss) of every update, in order
        starved = [0] * num_stages
        for x, y in state.train_batches():
            buffers[0].push(x, y, x)
            draws = torch.rand(num_stages, generator=generator).tolist() if self.speed_mode == "random" else None
            for k in range(num_stages):
                if draws is None:
                    credit[k] += speeds[k]
                    if credit[k] < 1.0 - 1e-9:
                        continue
                    credit[k] -= 1.0
                elif draws[k] >= speeds[k]:
                    continue
                batch = buffers[k].sample()
                if batch is None:
                    starved[k] += 1
                    continue
                h, yb, xb = batch
                result = update_stages(state, h, yb, [k], x=xb)
                updates.append((k, result.losses[0]))
                if k + 1 < num_stages:  # the batch as the stage saw it (after the rule's transform_batch)
                    buffers[k + 1].push(result.outputs[0], result.labels, result.inputs)
        read = epoch_losses(state, [[loss] for _, loss in updates], first_stages=[k for k, _ in updates])
        losses: list[list[float]] = [[] for _ in range(num_stages)]
        for (k, _), (value,) in zip(updates, read):
            losses[k].append(value)
        state.stats["train_loss"] = [float(sum(column) / len(column)) if column else math.nan for column in losses]
        state.stats["updates"] = [len(column) for column in losses]
        state.stats["starved"] = starved
        return [k for k in range(num_stages) if losses[k]]
