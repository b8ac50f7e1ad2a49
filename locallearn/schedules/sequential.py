"""``sequential``: greedy layer-wise training with a feature cache.

Stage k trains for its epochs; then it is frozen, its outputs on the whole
training set are computed once (the cache) and stage k+1 trains on them.
Frozen blocks are never run again during training. The cache is computed in
eval mode (dropout off, BatchNorm running statistics), so stage k+1 sees the
deterministic features that inference will give it.
"""

from __future__ import annotations

import torch

from locallearn._params import check_number
from locallearn.rules.base import LocalRule
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState, mean_losses, require_local_rule, train_step


@SCHEDULES.register("sequential")
class Sequential(Schedule):
    """Greedy layer-wise schedule (Belilovsky et al.): ``epochs`` epochs per stage, one stage at a time.

    Example:
        >>> Sequential(cache_batch_size=256).total_epochs(num_stages=3, epochs=4)
        12
    """

    def __init__(self, *, cache_batch_size: int | None = None) -> None:
        if cache_batch_size is not None:
            check_number(cache_batch_size, name="cache_batch_size", owner="Sequential", low=1, integer=True)
        # None: the training batch size. Large chunks are slower on a CPU (a 1024-image chunk
        # through a 28x28 conv block took 1.8x the time of 128-image chunks here).
        self.cache_batch_size = cache_batch_size
        self._cache: tuple[int, torch.Tensor] | None = None  # (stage it feeds, inputs)

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        return epochs * num_stages

    def check(self, rule: LocalRule) -> None:
        require_local_rule("sequential", rule)

    @torch.no_grad()
    def _inputs_of(self, state: TrainState, stage: int) -> torch.Tensor:
        """Training inputs of ``stage``, advancing the cache through frozen blocks as needed."""
        if self._cache is None or self._cache[0] > stage:
            self._cache = (0, state.x_train)
        feeds, h = self._cache
        while feeds < stage:
            block = state.net.stages[feeds].block
            was_training = block.training
            block.eval()
            h = torch.cat([block(chunk) for chunk in h.split(self.cache_batch_size or state.batch_size)])
            block.train(was_training)
            feeds += 1
            self._cache = (feeds, h)
        return h

    def train_epoch(self, state: TrainState) -> list[int]:
        stage = state.epoch // state.epochs
        inputs = self._inputs_of(state, stage)
        losses = [train_step(state, x, y, [stage]) for x, y in state.batches(inputs, state.y_train)]
        state.stats["train_loss"] = mean_losses(losses)
        return [stage]
