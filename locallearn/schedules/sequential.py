"""``sequential``: greedy layer-wise training with a feature cache.

Stage k trains for its epochs; then it is frozen, its outputs on the whole
training set are computed once (the cache) and stage k+1 trains on them.
Frozen blocks are never run again during training. The cache is computed in
eval mode (dropout off, BatchNorm running statistics), so stage k+1 sees the
deterministic features that inference will give it.

A cache needs inputs that are the same every epoch: in-memory data without
augmentation. With augmentation or a DataLoader, the frozen prefix is run
again on every batch, under ``no_grad`` and in eval mode. The epoch record says
which: ``stage_inputs`` is ``"cached"`` or ``"recomputed"``.
"""

from __future__ import annotations

import torch

from locallearn._params import check_number
from locallearn.data.batches import TensorBatches
from locallearn.schedules.base import SCHEDULES, Schedule, TrainState, mean_losses, through_frozen, train_step


@SCHEDULES.register("sequential")
class Sequential(Schedule):
    """Greedy layer-wise schedule (Belilovsky et al.): ``epochs`` epochs per stage, one stage at a time.

    Source: Bengio, Lamblin, Popovici & Larochelle, NeurIPS 2006 (greedy layer-wise training); Belilovsky, Eickenberg & Oyallon, ICML 2019 (greedy layer-wise CNNs).

    Example:
        >>> Sequential(cache_batch_size=256).total_epochs(num_stages=3, epochs=4)
        12
    """

    source = 'Bengio, Lamblin, Popovici & Larochelle, NeurIPS 2006 (greedy layer-wise training); Belilovsky, Eickenberg & Oyallon, ICML 2019 (greedy layer-wise CNNs)'

    data_parallel = True  # each update is a train_step on a global batch (the cache is the same on every rank)
    needs_local_rule = True
    carries_batch_transform = False  # stage k > 0 trains on cached outputs of stage k - 1, not on the rule's batches

    def __init__(self, *, cache_batch_size: int | None = None) -> None:
        if cache_batch_size is not None:
            check_number(cache_batch_size, name="cache_batch_size", owner="Sequential", low=1, integer=True)
        # None: the training batch size. Large chunks are slower on a CPU (a 1024-image chunk
        # through a 28x28 conv block took 1.8x the time of 128-image chunks here).
        self.cache_batch_size = cache_batch_size
        self._cache: tuple[int, torch.Tensor] | None = None  # (stage it feeds, inputs)

    def total_epochs(self, *, num_stages: int, epochs: int) -> int:
        return epochs * num_stages

    @torch.no_grad()
    def _inputs_of(self, state: TrainState, stage: int) -> torch.Tensor:
        """Training inputs of ``stage``, advancing the cache through frozen blocks as needed."""
        if self._cache is None or self._cache[0] > stage:
            self._cache = (0, state.source.x.to(state.source.device))
        feeds, h = self._cache
        if feeds < stage:
            self._cache = (stage, through_frozen(state.net, h, feeds, stage, self.cache_batch_size or state.batch_size))
        return self._cache[1]

    def train_epoch(self, state: TrainState) -> list[int]:
        stage = state.epoch // state.epochs
        source = state.source
        if source.deterministic and isinstance(source, TensorBatches):
            inputs = self._inputs_of(state, stage)
            index = torch.arange(len(inputs), device=inputs.device)
            losses = [
                train_step(state, h, source.y[i].to(h.device), [stage], x=source.x[i].to(h.device))
                for h, i in state.batches(inputs, index)
            ]
            state.stats["stage_inputs"] = "cached"
        else:
            losses = [train_step(state, through_frozen(state.net, x, 0, stage), y, [stage], x=x) for x, y in state.train_batches()]
            state.stats["stage_inputs"] = "recomputed"
        state.stats["train_loss"] = mean_losses(state, losses, first_stage=stage)
        return [stage]
