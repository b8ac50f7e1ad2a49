"""Gradient checkpointing of a stage's block, the memory baseline beside local learning.

Chen, Xu, Zhang & Guestrin 2016, "Training Deep Nets with Sublinear Memory Cost": keep only each
segment's input during the forward pass and recompute the segment's activations during the
backward pass. InfoPro (Wang et al. 2021, Table 3) compares local learning with K modules against
end-to-end training checkpointed over the same K segments; ``e2e:checkpoint=true`` and
``joint:checkpoint=true`` are that baseline here, the segments being the net's stages.

It uses ``torch.utils.checkpoint`` in its re-entrant form: the segment's input is saved through
autograd's ``save_for_backward`` and the recomputation runs inside the backward pass, so both are
seen by ``saved_tensors_hooks`` (the benchmarks' ``SavedTensorMeter`` counts what checkpointing
really holds). The random state is restored for the recomputation (dropout draws the same masks),
so the gradients equal plain backprop's. A block's BatchNorm updates its running statistics twice
per step (once in the recomputation), as with any use of ``torch.utils.checkpoint``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> block = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = torch.randn(3, 4)
    >>> checkpointed(block, x).sum().backward()
    >>> all(p.grad is not None for p in block.parameters())
    True
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _with_anchor(block: nn.Module, h: torch.Tensor, _anchor: torch.Tensor) -> torch.Tensor:
    return block(h)


def checkpointed(block: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``block(h)``, its activations recomputed in the backward pass instead of kept."""
    if h.requires_grad:
        return checkpoint(block, h, use_reentrant=True)
    # the re-entrant form backpropagates only if an input needs a gradient: the net's own input does
    # not, so an empty anchor that does is passed along (it costs nothing and gets no gradient)
    anchor = torch.empty(0, device=h.device, requires_grad=True)
    return checkpoint(_with_anchor, block, h, anchor, use_reentrant=True)
