"""T10. The placement condition (survey eq. 4): adding an exit at k lowers the expected cost exactly when
``f_k S_k - r_k h_k > 0`` (theory/README.md, T10), checked with the real early-exit runner counting FLOPs.

Network A has an exit after every stage; network B is A without exit k (blocks k and k+1 fused, head k
gone). Both run through ``EarlyExitRunner(count_flops=True)`` under the same thresholds for the exits
they share; the measured saving ``mean FLOPs(B) - mean FLOPs(A)`` is compared with eq. 4 evaluated
on ``stage_costs``'s FLOP table.

Example:
    >>> from types import SimpleNamespace as NS
    >>> from torch import nn
    >>> net = NS(stages=[NS(block=nn.Linear(2, 3), head=nn.Linear(3, 2)), NS(block=nn.Linear(3, 3), head=nn.Linear(3, 2))])
    >>> [type(s.block).__name__ for s in without_exit(net, 0).stages]
    ['Sequential']
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

import locallearn as ll
from locallearn.exits import EarlyExitRunner, Thresholds, exit_gain, exit_gains, stage_costs

from ._claim import Result, verdict_from

POLICY = "entropy"


def without_exit(net: Any, k: int) -> ll.LocalNet:
    """``net`` without exit ``k``: block k and block k+1 fused into one stage with head k+1 (same modules)."""
    stages = list(net.stages)
    fused = ll.Stage(nn.Sequential(stages[k].block, stages[k + 1].block), stages[k + 1].head)
    return ll.LocalNet(stages[:k] + [fused] + stages[k + 2 :])


def placement_row(net: ll.LocalNet, x: torch.Tensor, values: list[float], k: int, input_shape: tuple[int, ...]) -> dict:
    """Measured saving of exit ``k`` under the thresholds ``values`` against eq. 4 from the FLOP table."""
    table = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], input_shape)
    with_k = EarlyExitRunner(net, Thresholds.fixed(POLICY, values), count_flops=True).run(x)
    without_k = EarlyExitRunner(without_exit(net, k), Thresholds.fixed(POLICY, values[:k] + values[k + 1 :]),
                                count_flops=True).run(x)
    measured = float(without_k.flops.mean() - with_k.flops.mean())
    leave, reach = with_k.exit == k, with_k.exit >= k
    # S_i: what a sample leaving at k would have run after k without this exit: blocks and heads k+1..e_i,
    # e_i its exit in network B, renumbered to A's stages
    exit_in_a = without_k.exit + (without_k.exit >= k).long()
    after = torch.tensor([sum(table.blocks[k + 1 : e + 1]) + sum(table.heads[k + 1 : e + 1]) for e in exit_in_a.tolist()],
                         dtype=torch.float64)
    saved = float(after[leave].mean()) if leave.any() else 0.0
    predicted = exit_gain(exit_fraction=float(leave.double().mean()), saved_cost=saved,
                          reach_fraction=float(reach.double().mean()), head_cost=table.heads[k])
    return {
        "exit": k, "threshold": values[k], "f_k": float(leave.double().mean()), "r_k": float(reach.double().mean()),
        "S_k": saved, "h_k": table.heads[k], "eq4_gain": predicted, "measured_saving": measured,
        "package_exit_gains": exit_gains(with_k.exit, table.blocks, table.heads)[k],
        "agree": (measured > 0) == (predicted > 0) and abs(measured - predicted) <= 1e-9 * table.full,
    }


def trained_net(data: ll.data.Dataset) -> ll.LocalNet:
    """A 3-stage MLP (64 wide) with MLP heads (128 hidden, each dearer than a block), trained 2 epochs with ``local``."""
    ll.seed_everything(0)
    net = ll.build_mlp(data.input_shape, (64, 64, 64), data.num_classes, head="mlp")
    ll.train(net, data, rule="local", epochs=2, progress=False)
    return net


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    data = ll.data.load("digits")
    net = trained_net(data)
    x = data.x_test
    with torch.no_grad():
        sureness = torch.stack([Thresholds.fixed(POLICY, [0.0, 0.0]).policy.sureness(z) for z in net.eval()(x)])
    quantiles = (0.05, 0.5, 0.95) if fast else (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98)
    rows = []
    for k in (0, 1):
        for q in quantiles:
            values = [float(sureness[j].quantile(0.5)) for j in range(2)]
            values[k] = float(sureness[k].quantile(q))
            rows.append(placement_row(net, x, values, k, data.input_shape))
    held = [r["agree"] for r in rows]
    signs = sum(r["measured_saving"] > 0 for r in rows)
    package_exact = all(abs(r["package_exit_gains"] - r["eq4_gain"]) < 1e-6 for r in rows if r["exit"] == 1)
    package_off = max(abs(r["package_exit_gains"] - r["eq4_gain"]) for r in rows if r["exit"] == 0)
    summary = (
        f"the runner's measured saving equals eq. 4 to 1e-9 of the full cost, with the same sign, in {sum(held)}/{len(held)} "
        f"cases ({signs} where the exit pays, {len(rows) - signs} where it costs); locallearn.exits.exit_gains (S_k = every "
        f"later block + the last head, i.e. no other exit after k) is {'exact' if package_exact else 'NOT exact'} for the "
        f"last early exit; for exit 0 it is off by up to {package_off:.0f} FLOPs (later exits change S_k both ways)"
    )
    setting = (f"digits test split (360), MLP 3x64 with MLP heads (128 hidden) trained 2 epochs with local; policy "
               f"{POLICY}; thresholds = quantiles of each exit's sureness, the other exit at its median; FLOPs counted by "
               f"the runner (FlopCounterMode)")
    table = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    return Result("T10", "Exit placement condition (eq. 4)", verdict_from(held), summary, table, setting,
                  time.process_time() - start)
