"""``freezeout``: stage-wise learning rates annealed to zero at staggered freezing points (Brock et al. 2017,
"FreezeOut"; survey sec. 5.4, eq. 10).

Training runs ``T = epochs x batches per epoch`` iterations; ``t = j / T`` at
iteration ``j``. Stage i (of L) freezes at ``t_i = s(t_0 + (1 - t_0) i / (L - 1))``
with ``s`` the spacing: ``linear`` (identity: equispaced points, the last stage at
1), or Brock et al.'s ``squared`` and ``cubic`` (the point squared or cubed, so
``t_0`` is given before cubing). Until then its learning rate follows eq. 10:

    lr_i(t) = 0.5 lr_i(0) (1 + cos(pi t / t_i)),

with ``lr_i(0)`` the optimiser's learning rate, divided by ``t_i`` when
``scale_lr`` (Brock et al.'s "scaled" variant: every stage travels about the
same total distance). At ``t >= t_i`` the stage is frozen: it is no longer
updated, no longer runs backward, and with in-memory data no longer runs
forward either: its outputs on the whole training set are computed once, in
eval mode, and later stages read them from this cache (with streamed or
augmented data the frozen blocks run forward in eval mode under ``no_grad``).
Frozen blocks are in eval mode, as in Brock et al.'s code (BatchNorm keeps its
running statistics).

The schedule sets each stage's learning rate itself, every iteration; a
trainer-level ``lr_schedule`` would be overridden. Any rule works; a global
rule (``joint``) backpropagates through the stages still training only.

Example:
    >>> Freezeout(t0=0.5).freezing_points(3)
    [0.5, 0.75, 1.0]
    >>> [round(t, 3) for t in Freezeout(t0=0.8, spacing="cubic").freezing_points(3)]
    [0.512, 0.729, 1.0]
"""

from __future__ import annotations

import math

import torch

from locallearn._params import check_choice, check_number
from locallearn.data.batches import TensorBatches
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState, mean_losses, through_frozen, train_step

SPACINGS = {"linear": 1, "squared": 2, "cubic": 3}


@SCHEDULES.register("freezeout")
class Freezeout(Schedule):
    """Per-stage cosine learning rates annealed to zero at staggered freezing points; frozen stages stop running.

    FreezeOut (Brock et al. 2017; survey eq. 10): see the module docstring for the schedule and its options.

    Source: Brock, Lim, Ritchie & Weston, 2017, 'FreezeOut' (arXiv:1706.04983; ajbrock/FreezeOut).

    Defaults that differ from Brock et al.'s code: ``t0=0.5``, ``spacing="linear"``, ``scale_lr=False``
    (theirs: ``t_0 = 0.8``, cubic spacing, scaled learning rates); pass those to follow it.
    """

    source = "Brock, Lim, Ritchie & Weston, 2017, 'FreezeOut' (arXiv:1706.04983; ajbrock/FreezeOut)"

    data_parallel = True  # each update is a train_step on a global batch (the cache is the same on every rank)
    carries_batch_transform = False  # once stage 1 is frozen, the first active stage's inputs skip the rule's batches
    plans_by_epoch_count = True  # the freezing points are fractions of the whole run: a resume cannot add epochs

    def __init__(self, *, t0: float = 0.5, spacing: str = "linear", scale_lr: bool = False, cache: bool = True) -> None:
        self.t0 = check_number(t0, name="t0", owner="Freezeout", low=0.0, high=1.0, low_inclusive=False)
        self.spacing = check_choice(spacing, name="spacing", owner="Freezeout", choices=SPACINGS)
        self.scale_lr = check_choice(scale_lr, name="scale_lr", owner="Freezeout", choices=(True, False))
        self.cache = check_choice(cache, name="cache", owner="Freezeout", choices=(True, False))
        self._cache: tuple[int, torch.Tensor] | None = None  # (stage it feeds, its inputs for the whole training set)

    def freezing_points(self, num_stages: int) -> list[float]:
        """``t_i`` for every stage, as fractions of the training budget (the last stage at 1)."""
        if num_stages == 1:
            return [1.0]
        power = SPACINGS[self.spacing]
        return [(self.t0 + (1 - self.t0) * i / (num_stages - 1)) ** power for i in range(num_stages)]

    def learning_rates(self, base: float, t: float, num_stages: int) -> list[float]:
        """Eq. 10 for every stage at training fraction ``t`` (0 for a frozen stage)."""
        rates = []
        for t_i in self.freezing_points(num_stages):
            start = base / t_i if self.scale_lr else base
            rates.append(0.5 * start * (1 + math.cos(math.pi * t / t_i)) if t < t_i else 0.0)
        return rates

    def _set_rates(self, state: TrainState, t: float) -> list[int]:
        """Set every stage's learning rate for fraction ``t``; return the stages still training (a suffix)."""
        n = len(state.optimizers)
        for k, optimizer in enumerate(state.optimizers):
            for group in optimizer.param_groups if optimizer is not None else ():
                base = group.setdefault("freezeout_base_lr", group["lr"])  # kept in the optimiser's state_dict
                group["lr"] = self.learning_rates(base, t, n)[k]
        return [k for k, t_k in enumerate(self.freezing_points(n)) if t < t_k]

    def _cached_inputs(self, state: TrainState, first_active: int) -> torch.Tensor:
        """Training inputs of stage ``first_active``, advancing the cache through newly frozen blocks."""
        if self._cache is None or self._cache[0] > first_active:
            self._cache = (0, state.source.x.to(state.source.device))
        feeds, h = self._cache
        if feeds < first_active:
            self._cache = (first_active, through_frozen(state.net, h, feeds, first_active, state.batch_size))
        return self._cache[1]

    def _batches(self, state: TrainState, cached: bool):
        """``(x, y, rows)`` per batch: ``rows`` indexes the training set when the cache is used, else None."""
        if not cached:
            for x, y in state.train_batches():
                yield x, y, None
            return
        source = state.source
        index = torch.arange(source.num_samples, device=source.x.device)
        for rows, _ in state.batches(index, index):  # the source's own order
            yield source.x[rows].to(source.device), source.y[rows].to(source.device), rows

    def train_epoch(self, state: TrainState) -> list[int]:
        source = state.source
        try:
            per_epoch = len(source)
        except TypeError as error:
            raise ValueError("The 'freezeout' schedule needs training data whose number of batches is known (len()).") from error
        budget = state.epochs * per_epoch
        cached = self.cache and source.deterministic and isinstance(source, TensorBatches)
        losses, trained, active = [], set(), []
        for j, (x, y, rows) in enumerate(self._batches(state, cached)):
            active = self._set_rates(state, (state.epoch * per_epoch + j) / budget)
            if not active:
                raise RuntimeError(f"freezeout: every stage is frozen at epoch {state.epoch + 1}; the run is longer than its budget of {state.epochs} epochs.")
            first = active[0]
            h = self._cached_inputs(state, first)[rows] if cached else through_frozen(state.net, x, 0, first, state.batch_size)
            losses.append([math.nan] * first + train_step(state, h, y, active, x=x))
            trained.update(active)
        state.stats["train_loss"] = mean_losses(state, losses)
        state.stats["stages_active_at_end"] = active
        state.stats["stage_inputs"] = "cached" if cached else "recomputed"
        return sorted(trained)
