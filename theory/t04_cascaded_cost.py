"""T4. The cascaded cost: the FLOPs the early-exit runner really spends per sample average to
``E[C] = sum_k (n_k / n) sum_{j<=k} (b_j + c_j)`` (theory/README.md, T4).

Example:
    >>> m = measure()
    >>> len(m["exits_used"]) > 1
    True
"""

from __future__ import annotations

import time

import torch

import locallearn as ll
from locallearn.exits import EarlyExitRunner, Thresholds, stage_costs

from ._claim import FAILS, HOLDS, Result


def measure() -> dict:
    """The runner's counted FLOPs, the cost table and every sample's exit (3-stage MLP, median thresholds)."""
    torch.manual_seed(0)
    net = ll.build_mlp((32,), (64, 64, 64), 10)
    table = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], (32,))
    x = torch.randn(200, 32)
    sureness = Thresholds.fixed("entropy", [0.0, 0.0]).policy.sureness(torch.stack(net.eval()(x)))
    thresholds = Thresholds.fixed("entropy", [sureness[0].median().item(), sureness[1].median().item()])
    out = EarlyExitRunner(net, thresholds, count_flops=True).run(x)
    return {"runner_mean_flops": out.flops.mean().item(), "blocks": table.blocks, "heads": table.heads,
            "exit": out.exit, "exits_used": sorted(set(out.exit.tolist()))}


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    m = measure()
    n, exits = len(m["exit"]), m["exit"].tolist()
    formula = sum(exits.count(k) / n * sum(m["blocks"][j] + m["heads"][j] for j in range(k + 1)) for k in range(3))
    held = abs(m["runner_mean_flops"] - formula) <= 1e-9 * formula and len(m["exits_used"]) > 1
    row = {"runner_mean_flops": m["runner_mean_flops"], "formula": formula,
           "fractions": [exits.count(k) / n for k in range(3)], "blocks": m["blocks"], "heads": m["heads"]}
    return Result("T4", "The cascaded cost", HOLDS if held else FAILS,
                  f"runner {m['runner_mean_flops']:.1f} FLOPs/sample vs formula {formula:.1f}", [row],
                  "MLP 32-64-64-64 with linear heads, 200 random inputs, entropy policy at median thresholds",
                  time.process_time() - start)
