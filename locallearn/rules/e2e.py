"""``e2e``: end-to-end backprop on the final exit, the baseline every benchmark compares with."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules.checkpointing import checkpointed


@RULES.register("e2e")
class EndToEnd(LocalRule):
    """Cross-entropy of the last exit, backpropagated through every block.

    With ``probe_heads=True`` (default) the earlier heads are trained as probes on
    detached features, so every exit gives a usable prediction while the backbone
    learns from the last exit alone. ``checkpoint=True`` (off by default: a departure in
    memory and time only, the gradients are the same) is gradient checkpointing over the
    stages (Chen et al. 2016; ``locallearn.rules.checkpointing``), the memory baseline of
    InfoPro's Table 3.

    Source: Rumelhart, Hinton & Williams, Nature 1986 (backpropagation): the baseline every local-learning paper compares with.

    Example:
        >>> EndToEnd(probe_heads=False).get_params()
        {'probe_heads': False, 'checkpoint': False}
    """

    source = 'Rumelhart, Hinton & Williams, Nature 1986 (backpropagation): the baseline every local-learning paper compares with'

    detach_inputs = False
    sequence_labels = True  # a language model's next-token labels (B, T)

    def __init__(self, *, probe_heads: bool = True, checkpoint: bool = False) -> None:
        self.probe_heads = bool(probe_heads)
        self.checkpoint = check_choice(checkpoint, name="checkpoint", owner="EndToEnd", choices=(False, True))

    def block_forward(self, block: nn.Module, h_in: torch.Tensor) -> torch.Tensor:
        return checkpointed(block, h_in) if self.checkpoint else block(h_in)

    def probe_exit(self, is_last: bool) -> bool:
        """Every exit but the last reads detached features: the backbone learns from the last exit alone."""
        return not is_last

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
        if out.is_last or self.probe_heads:  # an earlier exit's logits are on detached features (probe_exit)
            return F.cross_entropy(out.logits, y)
        return None
