"""T6. Layer-wise error propagation (Belilovsky, Eickenberg & Oyallon 2019): the final loss is at most the
shallow optimum plus the sum of the per-stage optimisation gaps (theory/README.md, T6).

Greedy training of ``L`` ReLU stages of equal width on spirals, each stage stopped after ``budget``
full-batch Adam steps. For each stage the gap ``eps_k = R_k(stopped) - R_k*`` is measured against
``R_k*``, the best loss a long run of the same stage reaches on the same inputs.

Example:
    >>> row = run_budget(budget=5, reference_steps=10, num_stages=2, width=8, n_train=60)
    >>> row["final_loss"] <= row["bound"]
    True
"""

from __future__ import annotations

import time

import torch

import locallearn as ll

from ._claim import Result, verdict_from
from ._data import spirals_dataset
from ._greedy import features, train_stage


def run_budget(*, budget: int, reference_steps: int, num_stages: int = 4, width: int = 64, n_train: int = 600,
               seed: int = 0) -> dict:
    """One greedy chain stopped at ``budget`` steps per stage; per-stage gaps, the final loss and the bound."""
    ds = spirals_dataset(n_train=n_train, n_test=600, seed=seed)
    ll.seed_everything(seed)
    net = ll.build_mlp(ds.input_shape, (width,) * num_stages, ds.num_classes)
    h, h_test = ds.x_train, ds.x_test
    gaps, optima, stopped = [], [], []
    for stage in net.stages:
        curve, snapshot = train_stage(stage, h, ds.y_train, steps=reference_steps, snapshot_at=budget)
        stage.load_state_dict(snapshot)
        stopped.append(curve[budget])
        optima.append(min(curve))
        gaps.append(curve[budget] - min(curve))
        h, h_test = features(stage, h), features(stage, h_test)
    with torch.no_grad():
        test_acc = (net.stages[-1].head(h_test).argmax(1) == ds.y_test).float().mean().item()
    # the bound's assumption: stage k+1 can do at least as well as stage k did (it contains the identity)
    assumption = [optima[k + 1] <= stopped[k] + 1e-6 for k in range(num_stages - 1)]
    return {
        "budget": budget,
        "gaps": [round(g, 4) for g in gaps],
        "sum_gaps": sum(gaps),
        "shallow_optimum": optima[0],
        "final_loss": stopped[-1],
        "bound": optima[0] + sum(gaps),
        "next_stage_no_worse": f"{sum(assumption)}/{len(assumption)}",
        "final_test_acc": test_acc,
    }


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    budgets, reference, stages = ((25, 100), 400, 3) if fast else ((10, 25, 50, 100, 200, 400), 1000, 4)
    rows = [run_budget(budget=b, reference_steps=reference, num_stages=stages) for b in budgets]
    held = [r["final_loss"] <= r["bound"] + 1e-6 for r in rows]
    finals = [r["final_loss"] for r in rows]
    monotone = all(a >= b for a, b in zip(finals, finals[1:]))
    verdict = verdict_from(held)
    summary = (
        f"final loss <= R_1* + sum eps_k at {sum(held)}/{len(held)} budgets; the final loss falls with the "
        f"budget {'monotonically' if monotone else 'not monotonically'}; smallest slack "
        f"(bound - final) {min(r['bound'] - r['final_loss'] for r in rows):.3f}"
    )
    table = [{**r, **{k: round(r[k], 4) for k in ("sum_gaps", "shallow_optimum", "final_loss", "bound", "final_test_acc")}}
             for r in rows]
    setting = (f"spirals (3 classes, 600 train / 600 test), {stages} stages Linear(64)-ReLU with linear heads, "
               f"full-batch Adam lr 1e-2, R_k* = best loss of a {reference}-step run of the same stage, seed 0")
    return Result("T6", "Layer-wise error propagation", verdict, summary, table, setting, time.process_time() - start)
