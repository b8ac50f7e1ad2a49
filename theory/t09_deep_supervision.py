"""T9. Deep supervision (Lee et al. 2015, deeply supervised nets; Theorem 1 in the survey): companion losses at
every exit speed up the convergence of the last exit's training loss (theory/README.md, T9).

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

from ._claim import Result, verdict_from

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


#: (activation, depth, optimizer, lr): saturating deep nets with plain SGD, as in DSN, and a ReLU/Adam net.
CONFIGS = (("sigmoid", 6, "sgd", 0.1), ("tanh", 8, "sgd", 0.01), ("relu", 6, "adam", 1e-3))


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    data = ll.data.load("digits")
    seeds = (0,) if fast else (0, 1, 2)
    rows = [compare(data, activation=a, depth=d, optimizer=o, lr=lr, epochs=20, seeds=seeds)
            for a, d, o, lr in (CONFIGS[:1] if fast else CONFIGS)]
    held = [r["joint_faster"] for r in rows]
    summary = (
        f"joint's last exit converges faster than e2e's (reaches loss {THRESHOLD} first in most seeds, or ends lower "
        f"when neither reaches it) in {sum(held)}/{len(held)} settings: "
        + "; ".join(f"{r['net']} {r['optimizer']}: median final loss e2e {r['median_final_e2e']:.3f} vs joint "
                    f"{r['median_final_joint']:.3f}" for r in rows)
    )
    setting = "digits (1078 train), 20 epochs, batch 64, equal exit weights, one linear head per layer; last-exit training loss"
    return Result("T9", "Deep supervision speeds up convergence", verdict_from(held), summary, rows, setting,
                  time.process_time() - start)
