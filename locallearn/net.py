"""``Stage`` (a block plus its head) and ``LocalNet`` (a chain of stages whose heads are exits).

Data flows one way: ``x -> block_1 -> h_1 -> block_2 -> ... -> h_L`` and each
``h_k -> head_k -> logits_k``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = LocalNet([Stage(nn.Linear(4, 8), nn.Linear(8, 3)), Stage(nn.Linear(8, 8), nn.Linear(8, 3))])
    >>> [logits.shape for logits in net(torch.zeros(2, 4))]
    [torch.Size([2, 3]), torch.Size([2, 3])]
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Stage(nn.Module):
    """One block of layers and its auxiliary head.

    ``aux`` holds any extra trainable modules a rule attaches to this stage (for
    example a similarity projection); they belong to the stage, so they are
    optimised and checkpointed with it.
    """

    def __init__(self, block: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.head = head
        self.aux = nn.ModuleDict()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(features, logits)`` of this stage for its input ``h``."""
        features = self.block(h)
        return features, self.head(features)


class LocalNet(nn.Module):
    """A sequence of stages; ``forward`` returns the logits of every exit."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        super().__init__()
        if len(stages) == 0:
            raise ValueError("A LocalNet needs at least one stage.")
        self.stages = nn.ModuleList(stages)

    @property
    def num_exits(self) -> int:
        return len(self.stages)

    def forward(
        self, x: torch.Tensor, *, return_features: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Logits of every exit, first to last; with ``return_features`` also each block's output."""
        logits, features = [], []
        h = x
        for stage in self.stages:
            h, out = stage(h)
            features.append(h)
            logits.append(out)
        return (logits, features) if return_features else logits


@torch.no_grad()
def output_shapes(modules: Sequence[nn.Module], input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Shape (without batch) after each module when fed in order from ``input_shape``.

    Probes with a batch of two in eval mode, so BatchNorm and dropout leave no trace.
    """
    shapes = []
    h = torch.zeros(2, *input_shape)
    for module in modules:
        was_training = module.training
        module.eval()
        try:
            h = module(h)
        finally:
            module.train(was_training)
        shapes.append(tuple(h.shape[1:]))
    return shapes
