"""T8. Non-worsening (Baccarelli et al., as cited by the survey): a stage added to a greedy solution as a residual
block whose branch starts at zero, with a copy of the previous head, starts exactly at the greedy solution's
training loss, so training it cannot end above that loss (theory/README.md, T8).

Example:
    >>> import torch
    >>> block = ZeroResidual(4)
    >>> h = torch.randn(3, 4)
    >>> torch.equal(block(h), h)
    True
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

import locallearn as ll

from ._claim import Result, verdict_from
from ._data import spirals_dataset
from ._greedy import features, stage_loss, train_stage


class ZeroResidual(nn.Module):
    """``h + W_2 relu(W_1 h + b_1) + b_2`` with ``W_2 = 0, b_2 = 0`` at initialisation: the identity at first."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        nn.init.zeros_(self.branch[2].weight)
        nn.init.zeros_(self.branch[2].bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)


def grow(*, init: str, optimizer: str, lr: float, steps: int, added: int = 3, width: int = 64, seed: int = 0) -> list[dict]:
    """Train stage 1 greedily, then add ``added`` stages one at a time; one row per added stage.

    ``init="identity"``: a :class:`ZeroResidual` block and a copy of the previous head;
    ``init="default"``: the same residual block with PyTorch's default init everywhere and a fresh head.
    """
    ds = spirals_dataset(seed=seed)
    ll.seed_everything(seed)
    first = ll.build_mlp(ds.input_shape, (width,), ds.num_classes).stages[0]
    train_stage(first, ds.x_train, ds.y_train, steps=steps, lr=lr, optimizer=optimizer)
    with torch.no_grad():
        previous_loss = stage_loss(first, ds.x_train, ds.y_train).item()
    h, head, rows = features(first, ds.x_train), first.head, []
    for k in range(added):
        if init == "identity":
            stage = ll.Stage(ZeroResidual(width), copy.deepcopy(head))
        else:
            block = ZeroResidual(width)
            block.branch[2].reset_parameters()
            stage = ll.Stage(block, ll.make_head("linear", (width,), ds.num_classes))
        curve, _ = train_stage(stage, h, ds.y_train, steps=steps, lr=lr, optimizer=optimizer)
        rows.append({
            "init": init, "optimizer": optimizer, "stage": k + 2, "greedy_loss": previous_loss,
            "loss_at_init": curve[0], "max_during_training": max(curve), "final_loss": curve[-1],
            "not_worse": curve[-1] <= previous_loss,
        })
        previous_loss, head, h = curve[-1], stage.head, features(stage, h)
    return rows


#: (init, optimizer, lr, steps per stage): long runs with both inits, and short runs where the init decides.
RUNS = (("identity", "gd", 0.1, 300), ("identity", "adam", 1e-3, 300), ("default", "adam", 1e-3, 300),
        ("identity", "adam", 1e-3, 10), ("default", "adam", 1e-3, 10), ("default", "gd", 0.1, 10))
FAST_RUNS = (("identity", "adam", 1e-3, 100), ("default", "adam", 1e-3, 10))


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    rows = [dict(row, steps=steps) for init, opt, lr, steps in (FAST_RUNS if fast else RUNS)
            for row in grow(init=init, optimizer=opt, lr=lr, steps=steps)]
    identity = [r for r in rows if r["init"] == "identity"]
    default = [r for r in rows if r["init"] == "default"]
    exact = max(abs(r["loss_at_init"] - r["greedy_loss"]) for r in identity)
    held = [r["not_worse"] and abs(r["loss_at_init"] - r["greedy_loss"]) <= 1e-6 for r in identity]
    transient = [r for r in identity if r["max_during_training"] > r["greedy_loss"] + 1e-6]
    summary = (
        f"identity init starts at the greedy loss (largest difference {exact:.1e}) and ends no higher in "
        f"{sum(held)}/{len(held)} added stages (the loss rose above it on the way in {len(transient)}: Adam is not a "
        f"descent method); default init starts higher in {sum(r['loss_at_init'] > r['greedy_loss'] for r in default)}"
        f"/{len(default)} and ends worse in {sum(not r['not_worse'] for r in default)}/{len(default)}"
    )
    table = [{k: round(v, 5) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    setting = ("spirals; stage 1 = Linear(2, 64)-ReLU + linear head trained greedily with the same optimiser and "
               "budget, then 3 residual stages (branch 64-64-64) added one at a time; full-batch GD or Adam; seed 0")
    return Result("T8", "Non-worsening with identity initialisation", verdict_from(held), summary, table, setting,
                  time.process_time() - start)
