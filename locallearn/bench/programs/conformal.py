"""Conformal risk control against Learn-then-Test for exit thresholds, over many random calibration splits.

Command (the committed setting): ``python -m benchmarks conformal`` (seeds 0-2). One cell per seed: an MLP
3x256 with an exit per layer, trained by ``joint`` for 2 epochs on Fashion-MNIST (the validation
split's logits; digits with ``--data digits``), then for each level ``alpha`` and ``--splits`` random
draws of ``--calibration`` validation rows: thresholds by conformal risk control (``max_risk=alpha``)
and by Learn-then-Test (``max_drop=alpha``, ``epsilon``), both measured on the other validation rows.
CRC promises a mean loss (rows wrong at their exit while the last exit is right) at most ``alpha``;
LTT promises that at most a fraction ``epsilon`` of the draws drop more than ``alpha``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import torch

import locallearn as ll
from locallearn.provenance import load_average
from locallearn.exits import collect_exit_logits, risk_controlled
from locallearn.exits.conformal import conformal_risk_control, risk_over_splits

TITLE = "Conformal risk control vs Learn-then-Test (exit thresholds)"
DESCRIPTION = ("Exit thresholds calibrated on random validation draws by conformal risk control and by Learn-then-Test; "
               "each draw measured on the remaining rows: mean loss, violation rate, early-exit fraction")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="fashion-mnist", help="dataset (its validation split is split at random)")
    parser.add_argument("--seeds", type=int, default=3, help="trained networks (seeds 0..N-1)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--levels", default="0.0025,0.005,0.01", help="alpha (CRC) = delta (LTT), comma-separated")
    parser.add_argument("--epsilon", type=float, default=0.1, help="LTT's allowed chance of a draw above the level")
    parser.add_argument("--splits", type=int, default=200, help="random calibration/held-out draws per level")
    parser.add_argument("--calibration", type=int, default=1000, help="calibration rows per draw")
    parser.add_argument("--policy", default="max-prob")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"data": args.data, "seed": seed, "epochs": args.epochs, "levels": [float(v) for v in args.levels.split(",")],
             "epsilon": args.epsilon, "splits": args.splits, "calibration": args.calibration, "policy": args.policy}
            for seed in range(args.seeds)]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    for cell in todo:
        ds = ll.data.load(cell["data"])
        ll.seed_everything(cell["seed"])
        net = ll.build_mlp(ds.input_shape, (256, 256, 256), ds.num_classes)
        ll.train(net, ds, rule="joint", epochs=cell["epochs"], batch_size=128, progress=False, seed=cell["seed"])
        val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
        rows, load_start, start = [], load_average()[0], time.process_time()
        for level in cell["levels"]:
            crc = risk_over_splits(val, lambda c: conformal_risk_control(c, cell["policy"], max_risk=level), level=level,
                                   n_splits=cell["splits"], calibration_size=cell["calibration"], seed=cell["seed"])
            ltt = risk_over_splits(val, lambda c: risk_controlled(c, cell["policy"], max_drop=level, epsilon=cell["epsilon"]),
                                   level=level, n_splits=cell["splits"], calibration_size=cell["calibration"], seed=cell["seed"])
            rows.append({"level": level, "crc": crc, "ltt": ltt})
        last = float((val.logits[-1].argmax(-1) == val.labels).double().mean())
        add(cell, {"rows": rows, "val_rows": val.n_samples, "last_exit_val_accuracy": last,
                   "cpu_s": time.process_time() - start, "load_1min": [load_start, load_average()[0]]})


def _verdict(result: dict[str, Any], level: float) -> str:
    """'holds' below the level; 'within 2 s.e.' when above it by less than two Monte Carlo standard errors."""
    if result["mean_loss"] <= level:
        return "holds"
    return "within 2 s.e." if result["mean_loss"] <= level + 2 * result["mean_loss_se"] else "ABOVE"


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    lines = []
    for r in records:
        c = r["cell"]
        lines += [
            f"Seed {c['seed']}: {c['data']}, MLP 3x256 trained by joint for {c['epochs']} epochs; last exit "
            f"{100 * r['last_exit_val_accuracy']:.2f} % on validation ({r['val_rows']} rows). {c['splits']} random draws "
            f"of {c['calibration']} calibration rows per level, policy {c['policy']}, LTT epsilon {c['epsilon']}; "
            f"load {r['load_1min'][0]:.1f} -> {r['load_1min'][1]:.1f}.",
            "",
            "| level | CRC mean loss ± s.e. over draws (guarantee: <= level) | CRC draws above level | CRC early-exit % | "
            "LTT mean loss | LTT draws above level (guarantee: <= epsilon) | LTT early-exit % |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in r["rows"]:
            crc, ltt, level = row["crc"], row["ltt"], row["level"]
            lines.append(
                f"| {level:g} | {crc['mean_loss']:.4f} ± {crc['mean_loss_se']:.4f} ({_verdict(crc, level)}) | "
                f"{100 * crc['violation_rate']:.1f} % | {100 * crc['mean_early_exit_fraction']:.1f} | {ltt['mean_loss']:.4f} | "
                f"{100 * ltt['violation_rate']:.1f} % ({'holds' if ltt['violation_rate'] <= c['epsilon'] else 'ABOVE'}) | "
                f"{100 * ltt['mean_early_exit_fraction']:.1f} |"
            )
        lines.append("")
    return lines
