"""``joint``: deeply supervised training, a weighted sum of every exit's loss through the whole net."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules.checkpointing import checkpointed


@RULES.register("joint")
class JointSupervision(LocalRule):
    """Sum over exits of ``weights[k] * CE(logits_k, y)``, backpropagated end to end.

    ``weights=None`` weighs every exit 1. A shorter list than the number of exits is an error
    at the first step, naming both lengths. ``checkpoint=True``: gradient checkpointing over the
    stages, as ``e2e``'s (same gradients, less memory, more time).

    Source: Lee, Xie, Gallagher, Zhang & Tu, AISTATS 2015 (deeply-supervised nets).

    Example:
        >>> JointSupervision(weights=(0.5, 1.0)).get_params()
        {'weights': (0.5, 1.0), 'checkpoint': False}
    """

    source = 'Lee, Xie, Gallagher, Zhang & Tu, AISTATS 2015 (deeply-supervised nets)'

    detach_inputs = False
    sequence_labels = True  # a language model's next-token labels (B, T)

    def __init__(self, *, weights: Sequence[float] | None = None, checkpoint: bool = False) -> None:
        if weights is not None:
            weights = tuple(check_number(w, name="weights", owner="JointSupervision", low=0.0) for w in weights)
        self.weights = weights
        self.checkpoint = check_choice(checkpoint, name="checkpoint", owner="JointSupervision", choices=(False, True))

    def block_forward(self, block: nn.Module, h_in: torch.Tensor) -> torch.Tensor:
        return checkpointed(block, h_in) if self.checkpoint else block(h_in)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        weight = 1.0
        if self.weights is not None:
            if out.index >= len(self.weights):
                raise ValueError(
                    f"JointSupervision has {len(self.weights)} weights but the network has more exits "
                    f"(exit {out.index} has none); give one weight per exit."
                )
            weight = self.weights[out.index]
        return weight * F.cross_entropy(out.logits, y)
