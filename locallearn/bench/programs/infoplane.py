"""Information planes of tanh and ReLU MLPs on digits, trained with ``local`` and ``e2e``.

Command: ``python -m benchmarks infoplane`` (about 20 minutes on 2 shared CPU cores).

A cell is one seed x activation x rule: the 5-stage MLP 10-7-5-4-3 of Shwartz-Ziv & Tishby (one stage per
layer) trained on the digits training split, every stage's (I(X;T), I(T;Y)) recorded in bits at log-spaced
epochs on the whole training split (1257 inputs, so I(X;T) <= log2 1257 = 10.30 bits), with three
estimators on the same run:

- binning: 30 equal-width bins; on [-1, 1] for tanh (Shwartz-Ziv & Tishby), on each epoch's
  [min, max] of the layer for ReLU (Saxe et al.'s adaptive range);
- quantile: 30 bins with edges at the quantiles of the layer's activations (data-adaptive);
- kde: the pairwise-KL upper bound with noise variance 0.1 (Saxe et al.'s MNIST setting).

The report's table gives, per stage (numbered from 1), I(X;T) at its peak and at the end for every seed
(the drop is "compression"); figures: one plane per cell and estimator, and one panel per estimator with
every activation x rule on shared axes, with the bounds H(X) and H(Y).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import data as datasets
from locallearn.experiment import RunSpec, make_trainer
from locallearn.info.plane import InformationPlane, plot_information_plane, plot_information_planes

TITLE = "Information planes on digits"
DESCRIPTION = ("tanh and ReLU MLPs 10-7-5-4-3 trained by local and e2e; every stage's (I(X;T), I(T;Y)) in bits "
               "during training, by binning, quantile binning and KDE")
WIDTHS = (10, 7, 5, 4, 3)
ESTIMATORS = ("binning", "quantile", "kde")


def log_epochs(last: int, count: int = 30) -> list[int]:
    """About ``count`` epochs from 0 to ``last``, spaced evenly in log(1 + epoch)."""
    grid = torch.logspace(0, torch.log10(torch.tensor(last + 1.0)), count)
    return sorted({0, last, *[int(round(float(v))) - 1 for v in grid]})


def planes_for(activation: str, epochs: list[int], seed: int) -> dict[str, InformationPlane]:
    uniform = {"bins": 30, "value_range": (-1.0, 1.0)} if activation == "tanh" else {"bins": 30}
    options = {
        "binning": ("binning", uniform),
        "quantile": ("binning", {"bins": 30, "strategy": "quantile"}),
        "kde": ("kde", {"noise_var": 0.1}),
    }
    return {name: InformationPlane(estimator=est, estimator_kw=kw, epochs=epochs, seed=seed)
            for name, (est, kw) in options.items()}


def entropy_bits(labels: torch.Tensor) -> float:
    """H(Y) in bits of the empirical label distribution.

    Example:
        >>> entropy_bits(torch.tensor([0, 0, 1, 1]))
        1.0
    """
    p = torch.bincount(labels).double() / len(labels)
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


def run_one(cell: dict[str, Any]) -> dict[str, Any]:
    """Train one cell with the three estimators' callbacks; its accuracies, time, points and the bounds."""
    activation, rule, epochs, seed = cell["activation"], cell["rule"], cell["epochs"], cell["seed"]
    planes = planes_for(activation, log_epochs(epochs), seed)
    spec = RunSpec(data="digits", widths=WIDTHS, activation=activation, rule=rule, epochs=epochs, batch_size=32,
                   lr=1e-3, seed=seed, eval_every=epochs, progress=False)
    ds = datasets.load("digits")
    trainer = make_trainer(spec, ds, callbacks=list(planes.values()))
    start = time.perf_counter()
    result = trainer.fit()
    x, y = ds.split("train")
    return {"test_accuracy": result.final("test"), "seconds": time.perf_counter() - start,
            "hx_bits": math.log2(len(torch.unique(x.flatten(1), dim=0))), "hy_bits": entropy_bits(y),
            "points": {name: plane.points for name, plane in planes.items()}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"seed": seed, "activation": activation, "rule": rule, "epochs": args.epochs}
            for seed in args.seeds for activation in ("tanh", "relu") for rule in ("local", "e2e")]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    for cell in todo:
        record = run_one(cell)
        print(f"seed {cell['seed']} {cell['activation']}/{cell['rule']}: test {record['test_accuracy']}", flush=True)
        add(cell, record)


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    """The peak-and-end table, one figure per cell and estimator, one panel figure per estimator."""
    runs = {(r["cell"]["seed"], r["cell"]["activation"], r["cell"]["rule"]): r for r in records}
    seeds = sorted({seed for seed, _, _ in runs})
    for (seed, activation, rule), r in runs.items():
        for estimator, points in r["points"].items():
            plot_information_plane(points, out / f"{activation}_{rule}_{estimator}_s{seed}.png",
                                   title=f"{activation} MLP, rule {rule}, {estimator} (digits, seed {seed})")
    first = records[0]
    for estimator in ESTIMATORS:
        plot_information_planes({f"{a}, {rule}": r["points"][estimator] for (s, a, rule), r in runs.items() if s == seeds[0]},
                                out / f"panel_{estimator}_s{seeds[0]}.png", hx=first["hx_bits"], hy=first["hy_bits"],
                                title=f"{estimator}, seed {seeds[0]}: dashed I(X;T) = H(X), dotted I(T;Y) = H(Y)")
    return summarise(runs, first["cell"]["epochs"], seeds, first["hx_bits"], first["hy_bits"])


def summarise(runs: dict, epochs: int, seeds: list[int], hx: float, hy: float) -> list[str]:
    per_seed = " / ".join(f"s{s}" for s in seeds)
    lines = [
        f"Seeds {seeds}, {epochs} epochs, Adam lr 1e-3, batch 32, MLP {'-'.join(map(str, WIDTHS))}, every stage has a "
        "linear head, 1 torch thread.",
        f"I(X;T) and I(T;Y) in bits on the training inputs (I(X;T) <= H(X) = {hx:.2f}, I(T;Y) <= H(Y) = {hy:.2f}).",
        "'peak -> end': the largest I(X;T) over the recorded epochs (at epoch e) and the last one;",
        f"drop = peak - end (compression when clearly > 0). Cells list the seeds in order {per_seed}.",
        "",
        "| activation | rule | estimator | stage | I(X;T) peak (epoch) -> end | drop | I(T;Y) end | test acc % (exit) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for activation in ("tanh", "relu"):
        for rule in ("local", "e2e"):
            for estimator in ESTIMATORS:
                for k in range(len(WIDTHS)):
                    cells = {"traj": [], "drop": [], "ity": [], "acc": []}
                    for seed in seeds:
                        run = runs[(seed, activation, rule)]
                        traj = [p for p in run["points"][estimator] if p["stage"] == k + 1]
                        peak, end = max(traj, key=lambda p: p["ixt"]), traj[-1]
                        cells["traj"].append(f"{peak['ixt']:.2f} ({peak['epoch']}) -> {end['ixt']:.2f}")
                        cells["drop"].append(f"{peak['ixt'] - end['ixt']:.2f}")
                        cells["ity"].append(f"{end['ity']:.2f}")
                        cells["acc"].append(f"{100 * run['test_accuracy'][k]:.1f}")
                    lines.append(f"| {activation} | {rule} | {estimator} | {k + 1} | "
                                 + " | ".join(" / ".join(v) for v in cells.values()) + " |")
    lines.append("")
    lines.append("Training time per run incl. estimation (s): " + ", ".join(
        f"s{s} {a}/{r} {run['seconds']:.0f}" for (s, a, r), run in runs.items()) + ".")
    lines += ["", "Figures: one plane per activation, rule, estimator and seed (`<activation>_<rule>_<estimator>_s<seed>.png`), "
              "and one panel per estimator (`panel_<estimator>_s<seed>.png`) with every activation and rule on shared axes."]
    return lines


