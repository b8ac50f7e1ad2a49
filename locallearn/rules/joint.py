"""``joint``: deeply supervised training, a weighted sum of every exit's loss through the whole net."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules._step_exits import StepExits
from locallearn.rules.checkpointing import checkpointed
from locallearn.rules.l2w import L2W, per_sample_losses, weighted_loss


@RULES.register("joint")
class JointSupervision(LocalRule):
    """Sum over exits of ``weights[k] * CE(logits_k, y)``, backpropagated end to end.

    ``weights=None`` weighs every exit 1. A shorter list than the number of exits is an error
    at the first step, naming both lengths. ``checkpoint=True``: gradient checkpointing over the
    stages, as ``e2e``'s (same gradients, less memory, more time).

    ``weighting="l2w"`` (or an ``L2W`` instance, for its hyper-parameters) weighs every sample at every
    exit by Learning to Weight's meta-network instead (Han et al., ECCV 2022; ``locallearn.rules.l2w``).
    Its weighted sum couples the exits, so it is the last exit's loss (the earlier exits report none)
    and a step must train every stage; it reads the network input (``needs_input``).

    Source: Lee, Xie, Gallagher, Zhang & Tu, AISTATS 2015 (deeply-supervised nets).

    Example:
        >>> JointSupervision(weights=(0.5, 1.0)).get_params()
        {'weights': (0.5, 1.0), 'checkpoint': False, 'weighting': 'uniform'}
    """

    source = 'Lee, Xie, Gallagher, Zhang & Tu, AISTATS 2015 (deeply-supervised nets)'

    detach_inputs = False
    sequence_labels = True  # a language model's next-token labels (B, T)

    def __init__(
        self, *, weights: Sequence[float] | None = None, checkpoint: bool = False, weighting: str | L2W = "uniform"
    ) -> None:
        if weights is not None:
            weights = tuple(check_number(w, name="weights", owner="JointSupervision", low=0.0) for w in weights)
        self.weights = weights
        self.checkpoint = check_choice(checkpoint, name="checkpoint", owner="JointSupervision", choices=(False, True))
        if not isinstance(weighting, L2W):
            check_choice(weighting, name="weighting", owner="JointSupervision", choices=("uniform", "l2w"))
        self.weighting = weighting
        self._l2w = weighting if isinstance(weighting, L2W) else L2W() if weighting == "l2w" else None
        if self._l2w is not None:
            if weights is not None:
                raise ValueError("JointSupervision takes fixed 'weights' or weighting='l2w', not both: L2W learns the weights.")
            self.needs_input = True  # its meta step runs the network again on the batch
            self.sequence_labels = False
        self._step = StepExits("joint with weighting='l2w'", "its weights couple the exits and read the network input")

    def block_forward(self, block: nn.Module, h_in: torch.Tensor) -> torch.Tensor:
        return checkpointed(block, h_in) if self.checkpoint else block(h_in)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
        if self._l2w is not None:
            return self._l2w_loss(out, y)
        weight = 1.0
        if self.weights is not None:
            if out.index >= len(self.weights):
                raise ValueError(
                    f"JointSupervision has {len(self.weights)} weights but the network has more exits "
                    f"(exit {out.index} has none); give one weight per exit."
                )
            weight = self.weights[out.index]
        return weight * F.cross_entropy(out.logits, y)

    def _l2w_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
        step = self._step.add(out, (out.stage, out.logits), complete=out.x is not None)
        if step is None:
            return None
        chain = LocalNet([step[k][0] for k in range(out.index + 1)])
        buffers = {name: b.clone() for name, b in chain.named_buffers()}  # the virtual passes leave BatchNorm's statistics alone
        frozen = {name: p for name, p in chain.named_parameters() if not p.requires_grad}
        params = {name: p.detach().requires_grad_() for name, p in chain.named_parameters() if p.requires_grad}

        def forward(tensors: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
            return functional_call(chain, {**buffers, **frozen, **tensors}, (x,))

        self._l2w.meta_update(forward, params, out.x, y)
        losses = per_sample_losses([step[k][1] for k in range(out.index + 1)], y)
        return weighted_loss(losses, self._l2w.weights(losses))
