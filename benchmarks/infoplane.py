"""Information planes of tanh and ReLU MLPs on digits, trained with ``local`` and ``e2e``.

Run from the repository root (about 10 minutes on 2 shared CPU cores):

    python3 benchmarks/infoplane.py

For each activation x rule it trains the 5-stage MLP 10-7-5-4-3 of Shwartz-Ziv & Tishby (one stage
per layer) on the digits training split and records every stage's (I(X;T), I(T;Y)) in bits at
log-spaced epochs on the whole training split (1257 inputs, so I(X;T) <= log2 1257 = 10.30 bits),
with two estimators on the same run:

- binning: 30 equal-width bins; on [-1, 1] for tanh (Shwartz-Ziv & Tishby), on each epoch's
  [min, max] of the layer for ReLU (Saxe et al.'s adaptive range);
- kde: the pairwise-KL upper bound with noise variance 0.1 (Saxe et al.'s MNIST setting).

Writes benchmarks/results/infoplane/<activation>_<rule>_<estimator>.{json,png} and summary.md,
whose table gives, per stage, I(X;T) at its peak and at the end (the drop is "compression").
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


def log_epochs(last: int, count: int = 30) -> list[int]:
    """About ``count`` epochs from 0 to ``last``, spaced evenly in log(1 + epoch)."""
    grid = torch.logspace(0, torch.log10(torch.tensor(last + 1.0)), count)
    return sorted({0, last, *[int(round(float(v))) - 1 for v in grid]})


def run_one(activation: str, rule: str, epochs: int, seed: int) -> dict:
    binning_kw = {"bins": 30, "value_range": (-1.0, 1.0)} if activation == "tanh" else {"bins": 30}
    recorded = log_epochs(epochs)
    planes = {
        "binning": InformationPlane(estimator="binning", estimator_kw=binning_kw, epochs=recorded, seed=seed),
        "kde": InformationPlane(estimator="kde", estimator_kw={"noise_var": 0.1}, epochs=recorded, seed=seed),
    }
    spec = RunSpec(data="digits", widths=WIDTHS, activation=activation, rule=rule, epochs=epochs, batch_size=32,
                   lr=1e-3, seed=seed, eval_every=epochs, progress=False)
    trainer = make_trainer(spec, callbacks=list(planes.values()))
    start = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - start
    rows = {}
    for name, plane in planes.items():
        stem = f"{activation}_{rule}_{name}"
        plane.save(OUT, stem=stem, title=f"{activation} MLP, rule {rule}, {name} (digits, seed {seed})")
        rows[name] = plane.points
    return {"test_accuracy": result.final("test"), "seconds": seconds, "points": rows}


def summarise(runs: dict, command: str, epochs: int, seed: int) -> str:
    lines = [
        "# Information planes on digits (generated)",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.platform()}, torch {torch.__version__}, 1 intra-op thread. Seed {seed}, "
        f"{epochs} epochs, Adam lr 1e-3, batch 32, MLP {'-'.join(map(str, WIDTHS))}, every stage has a linear head.",
        "I(X;T) is in bits on the 1257 training inputs (ceiling log2 1257 = 10.30). 'peak' is the largest",
        "I(X;T) over the recorded epochs, 'end' the last; drop = peak - end (compression if clearly > 0).",
        "",
        "| activation | rule | estimator | stage | I(X;T) peak (epoch) | I(X;T) end | drop | I(T;Y) end | test acc (exit) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (activation, rule), run in runs.items():
        for estimator, points in run["points"].items():
            for k in sorted({p["stage"] for p in points}):
                traj = [p for p in points if p["stage"] == k]
                peak = max(traj, key=lambda p: p["ixt"])
                end = traj[-1]
                lines.append(
                    f"| {activation} | {rule} | {estimator} | {k + 1} | {peak['ixt']:.2f} ({peak['epoch']}) | "
                    f"{end['ixt']:.2f} | {peak['ixt'] - end['ixt']:.2f} | {end['ity']:.2f} | "
                    f"{100 * run['test_accuracy'][k]:.1f} % |"
                )
    lines.append("")
    lines.append("Training time per run (s): " + ", ".join(
        f"{a}/{r} {run['seconds']:.0f}" for (a, r), run in runs.items()) + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny layers: extra threads only add contention on a shared machine
    OUT.mkdir(parents=True, exist_ok=True)
    runs = {}
    for activation in ("tanh", "relu"):
        for rule in ("local", "e2e"):
            runs[(activation, rule)] = run_one(activation, rule, args.epochs, args.seed)
            print(f"{activation}/{rule}: test {runs[(activation, rule)]['test_accuracy']}", flush=True)
    command = "python3 benchmarks/infoplane.py" + (f" --epochs {args.epochs}" if args.epochs != 300 else "") + (
        f" --seed {args.seed}" if args.seed else "")
    (OUT / "summary.md").write_text(summarise(runs, command, args.epochs, args.seed))
    (OUT / "summary.json").write_text(json.dumps(
        {f"{a}_{r}": {"test_accuracy": v["test_accuracy"], "seconds": v["seconds"]} for (a, r), v in runs.items()},
        indent=2))
    print((OUT / "summary.md").read_text())


if __name__ == "__main__":
    main()
