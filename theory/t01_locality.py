"""T1. Locality: under a local rule, the gradient of the summed stage losses with respect to stage k's parameters
is the gradient of stage k's own loss, and no later loss reaches stage k (theory/README.md, T1).

Example:
    >>> measure(num_stages=2)["max_difference"]
    0.0
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

import locallearn as ll

from ._claim import FAILS, HOLDS, Result


def measure(*, num_stages: int = 3, width: int = 64) -> dict:
    """Largest |grad of the sum - grad of the own loss| over all parameters, and how many later losses reach a stage."""
    torch.manual_seed(0)
    net = ll.build_mlp((width,), (width,) * num_stages, 10)
    x, y = torch.randn(32, width), torch.randint(0, 10, (32,))
    h, losses = x, []
    for stage in net.stages:
        h = stage.block(h.detach())
        losses.append(F.cross_entropy(stage.head(h), y))
    groups = [list(stage.parameters()) for stage in net.stages]
    total = torch.autograd.grad(sum(losses), [p for group in groups for p in group], retain_graph=True)
    difference, leaks, offset = 0.0, 0, 0
    for k, group in enumerate(groups):
        own = torch.autograd.grad(losses[k], group, retain_graph=True)
        difference = max([difference] + [(a - b).abs().max().item() for a, b in zip(total[offset:], own)])
        offset += len(group)
        for j in range(k + 1, num_stages):
            later = torch.autograd.grad(losses[j], group, retain_graph=True, allow_unused=True)
            leaks += sum(g is not None for g in later)
    return {"stages": num_stages, "max_difference": difference, "later_gradients_reaching_earlier_stages": leaks}


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    rows = [measure(num_stages=n) for n in (2, 3, 5)]
    held = all(r["max_difference"] == 0.0 and r["later_gradients_reaching_earlier_stages"] == 0 for r in rows)
    summary = "the summed loss's gradient equals each stage's own gradient to the bit; no later loss reaches an earlier stage"
    return Result("T1", "Locality", HOLDS if held else FAILS, summary if held else "a gradient crosses stages", rows,
                  "MLP of 64-wide stages, batch 32, float32", time.process_time() - start)
