"""Information planes of tanh and ReLU MLPs on digits, trained with ``local`` and ``e2e``.

Run from the repository root (about 20 minutes on 2 shared CPU cores):

    python3 benchmarks/infoplane.py

For each seed x activation x rule it trains the 5-stage MLP 10-7-5-4-3 of Shwartz-Ziv & Tishby
(one stage per layer) on the digits training split and records every stage's (I(X;T), I(T;Y)) in
bits at log-spaced epochs on the whole training split (1257 inputs, so I(X;T) <= log2 1257 =
10.30 bits), with three estimators on the same run:

- binning: 30 equal-width bins; on [-1, 1] for tanh (Shwartz-Ziv & Tishby), on each epoch's
  [min, max] of the layer for ReLU (Saxe et al.'s adaptive range);
- quantile: 30 bins with edges at the quantiles of the layer's activations (data-adaptive);
- kde: the pairwise-KL upper bound with noise variance 0.1 (Saxe et al.'s MNIST setting).

Writes benchmarks/results/infoplane/<activation>_<rule>_<estimator>_s<seed>.{json,png} and
summary.md, whose table gives, per stage, I(X;T) at its peak and at the end for every seed (the
drop is "compression").
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from locallearn.experiment import RunSpec, make_trainer
from locallearn.info.plane import InformationPlane

OUT = Path(__file__).parent / "results" / "infoplane"
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


def run_one(activation: str, rule: str, epochs: int, seed: int) -> dict:
    planes = planes_for(activation, log_epochs(epochs), seed)
    spec = RunSpec(data="digits", widths=WIDTHS, activation=activation, rule=rule, epochs=epochs, batch_size=32,
                   lr=1e-3, seed=seed, eval_every=epochs, progress=False)
    trainer = make_trainer(spec, callbacks=list(planes.values()))
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    for name, plane in planes.items():
        plane.save(OUT, stem=f"{activation}_{rule}_{name}_s{seed}",
                   title=f"{activation} MLP, rule {rule}, {name} (digits, seed {seed})")
    return {"test_accuracy": result.final("test"), "seconds": seconds,
            "points": {name: plane.points for name, plane in planes.items()}}


def summarise(runs: dict, command: str, epochs: int, seeds: list[int]) -> str:
    per_seed = " / ".join(f"s{s}" for s in seeds)
    lines = [
        "# Information planes on digits (generated)",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.platform()}, torch {torch.__version__}, 1 intra-op thread. Seeds {seeds}, "
        f"{epochs} epochs, Adam lr 1e-3, batch 32, MLP {'-'.join(map(str, WIDTHS))}, every stage has a linear head.",
        "I(X;T) and I(T;Y) in bits on the 1257 training inputs (I(X;T) <= log2 1257 = 10.30, I(T;Y) <= log2 10 = 3.32).",
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
                        traj = [p for p in run["points"][estimator] if p["stage"] == k]
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny layers: extra threads only add contention on a shared machine
    OUT.mkdir(parents=True, exist_ok=True)
    runs = {}
    for seed in args.seeds:
        for activation in ("tanh", "relu"):
            for rule in ("local", "e2e"):
                runs[(seed, activation, rule)] = run_one(activation, rule, args.epochs, seed)
                print(f"seed {seed} {activation}/{rule}: test {runs[(seed, activation, rule)]['test_accuracy']}",
                      flush=True)
    command = "python3 benchmarks/infoplane.py" + (f" --epochs {args.epochs}" if args.epochs != 300 else "") + (
        f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0, 1] else "")
    (OUT / "summary.md").write_text(summarise(runs, command, args.epochs, args.seeds))
    (OUT / "summary.json").write_text(json.dumps(
        {f"{a}_{r}_s{s}": {"test_accuracy": v["test_accuracy"], "seconds": v["seconds"]}
         for (s, a, r), v in runs.items()}, indent=2))
    print((OUT / "summary.md").read_text())


if __name__ == "__main__":
    main()
