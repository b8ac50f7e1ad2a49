"""T9. Deep supervision (Lee et al. 2015, deeply supervised nets; Theorem 1 in the survey): companion losses at
every exit speed up the convergence of the last exit's training loss, under a stated condition: where e2e's
gradient vanishes (deep saturating nets, plain SGD). Checked there and where e2e learns well (ReLU, Adam), so
that the verdict can say "does not hold here" (theory/README.md, T9).

``joint`` (every exit's cross-entropy, backpropagated end to end) against ``e2e`` (the last exit's only) on
the same network, initialisation, data order and optimiser; the measure is the last exit's training loss
after every epoch.

Example:
    >>> epochs_to_reach([2.3, 1.0, 0.4, 0.3], 0.5), epochs_to_reach([2.3, 2.2], 0.5)
    (3, None)
"""

from __future__ import annotations

import statistics
import time
from typing import Sequence

import torch
from torch.nn import functional as F

import locallearn as ll

from ._claim import CONDITIONAL, FAILS, HOLDS, Result

#: The loss the last exit must reach (digits, 10 classes: ln 10 = 2.30 at chance).
THRESHOLD = 0.5


def epochs_to_reach(curve: Sequence[float], threshold: float) -> int | None:
    """The first epoch (1-based) whose loss is <= ``threshold``; None if never."""
    return next((i + 1 for i, loss in enumerate(curve) if loss <= threshold), None)


class LastExitTrainLoss(ll.Callback):
    """Records the last exit's cross-entropy on the whole training split after every epoch (eval mode)."""

    def __init__(self) -> None:
        self.curve: list[float] = []

    @torch.no_grad()
    def on_epoch_end(self, trainer: ll.Trainer, record: dict) -> None:
        trainer.net.eval()
        x, y = trainer.data.split("train")
        self.curve.append(F.cross_entropy(trainer.net(x)[-1], y).item())
        trainer.net.train()


def loss_curve(data: ll.data.Dataset, *, rule: str, activation: str, depth: int, optimizer: str, lr: float,
               epochs: int, seed: int) -> list[float]:
    ll.seed_everything(seed)
    net = ll.build_mlp(data.input_shape, (32,) * depth, data.num_classes, activation=activation)
    recorder = LastExitTrainLoss()
    config = ll.TrainConfig(epochs=epochs, optimizer=optimizer, lr=lr, batch_size=64, seed=seed, eval_every=0, progress=False)
    ll.Trainer(net, data, rule=rule, config=config, callbacks=[recorder]).fit()
    return recorder.curve


def compare(data: ll.data.Dataset, *, activation: str, depth: int, optimizer: str, lr: float, epochs: int,
            seeds: Sequence[int]) -> dict:
    """``joint`` against ``e2e`` over seeds: epochs to reach THRESHOLD and the final loss of the last exit."""
    reach: dict[str, list] = {"e2e": [], "joint": []}
    final: dict[str, list] = {"e2e": [], "joint": []}
    for seed in seeds:
        for rule in reach:
            curve = loss_curve(data, rule=rule, activation=activation, depth=depth, optimizer=optimizer, lr=lr,
                               epochs=epochs, seed=seed)
            reach[rule].append(epochs_to_reach(curve, THRESHOLD))
            final[rule].append(round(curve[-1], 4))
    # an unreached threshold counts as epochs + 1 when comparing
    joint_first = [(j or epochs + 1) < (e or epochs + 1) for j, e in zip(reach["joint"], reach["e2e"])]
    joint_lower = [j < e for j, e in zip(final["joint"], final["e2e"])]
    return {
        "net": f"MLP {depth}x32 {activation}", "optimizer": f"{optimizer} lr {lr}", "seeds": len(seeds),
        "epochs_to_reach_e2e": reach["e2e"], "epochs_to_reach_joint": reach["joint"],
        "final_loss_e2e": final["e2e"], "final_loss_joint": final["joint"],
        "median_final_e2e": statistics.median(final["e2e"]), "median_final_joint": statistics.median(final["joint"]),
        "joint_faster": sum(joint_first) > len(seeds) / 2 or (not any(joint_first) and sum(joint_lower) > len(seeds) / 2),
    }


#: (activation, depth, optimizer, lr, e2e's gradient vanishes?): the condition under which the claim is stated
#: (deep saturating nets with plain SGD, as in DSN), then nets where e2e learns well (ReLU with Adam, deep and shallow).
CONFIGS = (
    ("sigmoid", 6, "sgd", 0.1, True), ("tanh", 8, "sgd", 0.01, True),
    ("relu", 6, "adam", 1e-3, False), ("relu", 2, "adam", 1e-3, False),
)


def verdict_for(rows: Sequence[dict]) -> str:
    """``holds`` if joint is faster everywhere; ``holds under stated conditions`` if it is faster wherever e2e's
    gradient vanishes but not everywhere else; ``does not hold here`` if it is not faster in every vanishing case.

    Example:
        >>> verdict_for([{"vanishing": True, "joint_faster": True}, {"vanishing": False, "joint_faster": False}])
        'holds under stated conditions'
    """
    under_condition = [r["joint_faster"] for r in rows if r["vanishing"]]
    if not under_condition or not all(under_condition):
        return FAILS
    return HOLDS if all(r["joint_faster"] for r in rows) else CONDITIONAL


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    data = ll.data.load("digits")
    seeds = (0,) if fast else (0, 1, 2)
    configs = (CONFIGS[0], CONFIGS[3]) if fast else CONFIGS
    rows = [{**compare(data, activation=a, depth=d, optimizer=o, lr=lr, epochs=20, seeds=seeds), "vanishing": v}
            for a, d, o, lr, v in configs]
    verdict = verdict_for(rows)
    faster = lambda vanishing: [r for r in rows if r["vanishing"] == vanishing]  # noqa: E731
    summary = (
        f"joint's last exit converges faster than e2e's (reaches loss {THRESHOLD} first in most seeds, or ends lower "
        f"when neither reaches it) in {sum(r['joint_faster'] for r in faster(True))}/{len(faster(True))} settings where "
        f"e2e's gradient vanishes (the stated condition) and {sum(r['joint_faster'] for r in faster(False))}/"
        f"{len(faster(False))} where e2e learns well: "
        + "; ".join(f"{r['net']} {r['optimizer']}: median final loss e2e {r['median_final_e2e']:.3f} vs joint "
                    f"{r['median_final_joint']:.3f}" for r in rows)
    )
    setting = ("digits (1078 train), 20 epochs, batch 64, equal exit weights, one linear head per layer; last-exit "
               "training loss; condition: a deep saturating net (sigmoid / tanh) trained with plain SGD")
    return Result("T9", "Deep supervision speeds up convergence where e2e's gradient vanishes", verdict, summary, rows,
                  setting, time.process_time() - start)
