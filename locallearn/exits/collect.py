"""Collect every exit's logits of a network over one split, batch by batch, into an ``ExitLogits`` cache.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class TwoExits(nn.Module):
    ...     def forward(self, x):
    ...         return [x, 2 * x]
    >>> cache = collect_exit_logits(TwoExits(), torch.randn(10, 3), torch.zeros(10, dtype=torch.long), split="val", batch_size=4)
    >>> cache.logits.shape
    torch.Size([2, 10, 3])
"""

from __future__ import annotations

import torch
from torch import nn

from .cache import ExitLogits


@torch.inference_mode()
def collect_exit_logits(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, split: str, batch_size: int = 1024) -> ExitLogits:
    """Run ``net`` (whose forward returns the list of every exit's logits) in eval mode over ``x``."""
    was_training = net.training
    net.eval()
    try:
        chunks = [torch.stack(net(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    finally:
        net.train(was_training)
    return ExitLogits(torch.cat(chunks, 1), y, split)
