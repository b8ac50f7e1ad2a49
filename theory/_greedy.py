"""Greedy layer-wise training, one stage at a time, full batch: the setting of T6 and T8.

Stage k is trained on the fixed outputs of the trained stages before it (the greedy
problem ``min over (block_k, head_k) of CE(head_k(block_k(h_{k-1})), y)``), with Adam on
the whole training set, so a run is deterministic and its loss curve is the exact
training loss after every step.

Example:
    >>> import torch
    >>> net = ll.build_mlp((2,), (8,), 3)
    >>> curve, snapshot = train_stage(net.stages[0], torch.randn(12, 2), torch.arange(12) % 3, steps=5, snapshot_at=2)
    >>> len(curve), sorted(snapshot) == sorted(net.stages[0].state_dict())
    (6, True)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

import locallearn as ll


OPTIMIZERS = {"adam": torch.optim.Adam, "gd": torch.optim.SGD}


def stage_loss(stage: ll.Stage, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training cross-entropy of ``stage``'s own head on the inputs ``h``."""
    return F.cross_entropy(stage.head(stage.block(h)), y)


def train_stage(
    stage: ll.Stage, h: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float = 1e-2, optimizer: str = "adam",
    snapshot_at: int | None = None,
) -> tuple[list[float], dict[str, torch.Tensor] | None]:
    """Full-batch Adam (or plain gradient descent, ``optimizer="gd"``) on one stage; returns the loss before every
    step and after the last (``steps + 1`` values) and, if asked, the stage's state after ``snapshot_at`` steps."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train_stage's optimizer must be one of {sorted(OPTIMIZERS)}. Got {optimizer!r} instead.")
    step_rule = OPTIMIZERS[optimizer](stage.parameters(), lr=lr)
    curve, snapshot = [], None
    for step in range(steps + 1):
        loss = stage_loss(stage, h, y)
        curve.append(loss.item())
        if step == snapshot_at:
            snapshot = {k: v.detach().clone() for k, v in stage.state_dict().items()}
        if step == steps:
            break
        step_rule.zero_grad()
        loss.backward()
        step_rule.step()
    return curve, snapshot


@torch.no_grad()
def features(stage: ll.Stage, h: torch.Tensor) -> torch.Tensor:
    """The block's output on ``h`` (the next stage's fixed input)."""
    return stage.block(h)
