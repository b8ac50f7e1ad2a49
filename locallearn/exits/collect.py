"""Collect every exit's logits of a network over one split, batch by batch, into an ``ExitLogits`` cache.

The split is given as tensors ``x, y`` or as any iterable of ``(x, y)`` batches (a
``DataLoader``); each batch is moved to the device of the net's parameters.

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

from typing import Iterable

import torch
from torch import nn

from .cache import ExitLogits


@torch.no_grad()  # not inference_mode: the cached tensors feed trainable policies (learned gates)
def collect_exit_logits(
    net: nn.Module,
    x: torch.Tensor | Iterable[tuple[torch.Tensor, torch.Tensor]],
    y: torch.Tensor | None = None,
    *,
    split: str,
    batch_size: int = 1024,
) -> ExitLogits:
    """Run ``net`` (whose forward returns the list of every exit's logits) in eval mode over a split:
    tensors ``x, y``, or an iterable of ``(x, y)`` batches given as ``x`` with ``y`` left out."""
    if torch.is_tensor(x) != (y is not None):
        raise TypeError("Give the split as tensors x and y, or as one iterable of (x, y) batches with y left out.")
    batches = ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)) if y is not None else x
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    was_training = net.training
    net.eval()
    chunks, labels = [], []
    try:
        for xb, yb in batches:
            chunks.append(torch.stack(net(xb.to(device))).cpu())
            labels.append(yb.cpu())
    finally:
        net.train(was_training)
    return ExitLogits(torch.cat(chunks, 1), torch.cat(labels), split)
