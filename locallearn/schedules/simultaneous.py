"""``simultaneous``: every batch updates every stage; stage inputs are detached under a local rule."""

from __future__ import annotations

from locallearn.schedules.base import SCHEDULES, Schedule, TrainState, mean_losses, train_step


@SCHEDULES.register("simultaneous")
class Simultaneous(Schedule):
    """One forward pass per batch through all stages, one update of every stage.

    With a global rule (``e2e``, ``joint``) this is ordinary backprop training.

    Source: Nøkland & Eidnes, ICML 2019 (anokland/local-loss: every block's local loss every batch); DGL's synchronous form, Belilovsky et al., ICML 2020.

    Example:
        >>> Simultaneous().total_epochs(num_stages=4, epochs=5)
        5
    """

    source = "Nøkland & Eidnes, ICML 2019 (anokland/local-loss: every block's local loss every batch); DGL's synchronous form, Belilovsky et al., ICML 2020"

    data_parallel = True  # each update is a train_step on a global batch

    def train_epoch(self, state: TrainState) -> list[int]:
        stages = range(len(state.net.stages))
        losses = [train_step(state, x, y, stages) for x, y in state.train_batches()]
        state.stats["train_loss"] = mean_losses(state, losses)
        return list(stages)
