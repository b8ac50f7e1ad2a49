"""Early exits on Fashion-MNIST: a small CNN trained by ``local`` and by ``joint``, thresholds calibrated on
the validation split for <= 0.5 pt accuracy loss against the last exit, reported on the test split: FLOPs
saved and measured wall-clock speed-up at batch 1 and batch 256 against the full network.

Command (the committed setting: seeds 0-2, 3 epochs on the full 55 000-image training split):
``python -m benchmarks early_exit``.
A cell is one (rule, seed): trained (checkpoint in ``--work``, reused when there), then measured. The measuring
part waits (up to ``--lock-wait`` seconds) for the benchmarks' common lock ``/tmp/locallearn-bench.lock``, so
that no two benchmarks time each other, and records whether it got it. Exits and blocks are numbered from 1.
"""

from __future__ import annotations

import argparse
import fcntl
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import data as datasets
from locallearn import io
from locallearn.provenance import load_average
from locallearn.data import Dataset
from locallearn.exits import (
    EarlyExitRunner, Thresholds, collect_exit_logits, evaluate, exit_report, plot_accuracy_cost, plot_exit_histogram,
    risk_controlled, run_full, stage_costs, sweep, violation_rate,
)
from locallearn.exits.thresholds import Outcomes
from locallearn.experiment import RunSpec, make_trainer

TITLE = "Early exits on Fashion-MNIST (CPU)"
DESCRIPTION = ("A CNN trained by local and joint; exit thresholds calibrated on validation for a bounded accuracy "
               "loss, reported on test: FLOPs saved and the measured wall-clock speed-up of the real runner")
POLICIES = ("entropy", "max-prob", "margin", "patience", "gate", "weighted")
TIMED = ("entropy", "max-prob")
ANCHORS = {
    "BranchyNet": "LeNet/MNIST, batch 1, entropy exits: 3.37 -> 0.62 ms on CPU (5.4x), 99.20 -> 99.25 % accuracy, 94.3 % leave at exit 1",
    "Shallow-Deep Networks": "internal classifiers at 15-90 % of FLOPs; > 50 % average inference cost saved at preserved accuracy (max-prob >= q)",
}


def spec(cell: dict[str, Any]) -> RunSpec:
    return RunSpec(
        data="fashion-mnist", model="cnn", channels=tuple(cell["channels"]), rule=cell["rule"], epochs=cell["epochs"],
        batch_size=128, lr=cell["lr"], seed=cell["seed"], eval_every=0, progress=False,
    )


def take_lock(path: str, wait_s: float):
    """The open lock file if the exclusive lock was taken within ``wait_s`` seconds, else None."""
    handle = open(path, "a")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                return None
            time.sleep(5)


def train_one(cell: dict[str, Any], ds: Dataset, work: str) -> Path:
    """Train and checkpoint one cell; a checkpoint already in ``work`` is reused."""
    path = Path(work) / f"{cell['rule']}_seed{cell['seed']}_e{cell['epochs']}_n{cell['train_size']}.pt"
    if path.exists():
        return path
    trainer = make_trainer(spec(cell), ds)
    start = time.perf_counter()
    trainer.fit()
    print(f"trained {cell['rule']} seed {cell['seed']} in {time.perf_counter() - start:.0f} s: "
          f"test {trainer.result.final('test')}", flush=True)
    trainer.save_checkpoint(path)
    return path


def speedup(net, thresholds, x: torch.Tensor, batch: int, rounds: int, chunk: int) -> dict[str, float]:
    """Wall-clock per sample of the full network, of the runner with no early exit (its overhead) and of
    the runner with the calibrated thresholds. The batches are cut into chunks of ``chunk`` batches; each
    chunk is run ``rounds`` times by every method in turn and the fastest time of each method is kept
    (other jobs on the machine only ever add time), then the chunks are summed."""
    batches = list(x.split(batch))
    never = Thresholds.fixed(thresholds.policy, [float("inf")] * len(thresholds.values))
    fns = {"full": lambda xb: run_full(net, xb), "runner_no_exit": EarlyExitRunner(net, never).run, "early_exit": EarlyExitRunner(net, thresholds).run}
    total = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        fn(batches[0])  # warm-up
    for i in range(0, len(batches), chunk):
        part = batches[i : i + chunk]
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                for xb in part:
                    fn(xb)
                best[name] = min(best[name], time.perf_counter() - start)
        for name in fns:
            total[name] += best[name]
    ms = {f"{k}_ms_per_sample": 1e3 * v / len(x) for k, v in total.items()}
    return {"batch": batch, "samples": len(x), **ms, "speedup": ms["full_ms_per_sample"] / ms["early_exit_ms_per_sample"]}


def stage_times(net, x: torch.Tensor, batch: int, rounds: int) -> list[dict[str, float]]:
    """Wall-clock per sample of every block and head at ``batch`` (fastest of ``rounds`` passes)."""
    out = []
    with torch.inference_mode():
        inputs = list(x.split(batch))
        for stage in net.stages:
            block_best = head_best = float("inf")
            for _ in range(rounds):
                start = time.perf_counter()
                outputs = [stage.block(xb) for xb in inputs]
                middle = time.perf_counter()
                for h in outputs:
                    stage.head(h)
                block_best, head_best = min(block_best, middle - start), min(head_best, time.perf_counter() - middle)
            out.append({"block_ms_per_sample": 1e3 * block_best / len(x), "head_ms_per_sample": 1e3 * head_best / len(x)})
            inputs = outputs
    return out


def measure_one(path: Path, ds: Dataset, cell: dict[str, Any]) -> dict:
    payload = io.load_checkpoint(path)
    rule, seed = cell["rule"], cell["seed"]
    trainer = make_trainer(spec(cell), ds)
    trainer.net.load_state_dict(payload["net"])
    net = trainer.net.eval()
    val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
    test = collect_exit_logits(net, ds.x_test, ds.y_test, split="test")
    costs = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], ds.input_shape)
    correct = test.logits.argmax(-1) == test.labels
    record = {"rule": rule, "seed": seed, "exit_test_accuracy": correct.double().mean(1).tolist(),
              "overthinking_rate": float((correct[:-1].any(0) & ~correct[-1]).double().mean()),
              "block_flops": list(costs.blocks), "head_flops": list(costs.heads), "full_flops": costs.full, "policies": {}}
    record["stage_times_batch256"] = stage_times(net, ds.x_test, 256, cell["rounds"])
    for name in POLICIES:
        frontier = sweep(val, name, costs)
        th = frontier.target(cell["max_drop"] / 100)
        report = exit_report(test, evaluate(test, th, costs), costs)
        report.update(thresholds=list(th.values), val_accuracy=th.details["accuracy"], val_relative_cost=th.details["relative_cost"], target_met_on_val=th.details["met"])
        if name in TIMED:
            out = EarlyExitRunner(net, th, count_flops=True).run(ds.x_test)
            report["runner_agrees_with_offline"] = bool(torch.equal(out.prediction, evaluate(test, th).prediction))
            report["runner_counted_relative_cost"] = float(out.flops.mean()) / costs.full
            report["timing"] = [speedup(net, th, ds.x_test[: cell["batch1_samples"]], 1, cell["rounds"], 25), speedup(net, th, ds.x_test, 256, cell["rounds"], 4)]
        if name == "entropy":
            on_test = Outcomes(th.policy, test, costs)
            curve = [on_test.accuracy_cost(t) for t in frontier.thresholds]
            record["entropy_curve"] = {"val": [frontier.relative_cost, frontier.accuracy], "test": [[c for _, c in curve], [a for a, _ in curve]]}
        record["policies"][name] = report
        print(f"  {rule} seed {seed} {name}: drop {report['accuracy_drop_pt']:.2f} pt, FLOPs saved {100 * report['flops_saved_fraction']:.1f} %", flush=True)
    rc = risk_controlled(val, "max-prob", max_drop=cell["max_drop"] / 100, epsilon=0.1)
    record["risk_controlled"] = {
        "test": exit_report(test, evaluate(test, rc, costs), costs),
        "violation_on_val_splits": violation_rate(val, "max-prob", max_drop=cell["max_drop"] / 100, epsilon=0.1, n_splits=100, calibration_size=2500),
    }
    return record


def mean_sd(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    values = [scale * v for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def report(records: list[dict], args: argparse.Namespace, out: Path) -> list[str]:
    """The tables (per-exit accuracy, cost per block, policies, measured speed-up, risk control) and two figures."""
    cell = records[0]["cell"]
    rules = sorted({r["rule"] for r in records})
    locked = [r.get("lock_taken") for r in records]
    loads = [r["load_average_before_after"] for r in records]
    lines = [
        "The measuring part " + ("held the benchmarks' lock `/tmp/locallearn-bench.lock` for every cell.  " if all(locked)
                                 else "did NOT get the benchmarks' lock for every cell: other jobs ran beside it.  ")
        + "1-minute load average before / after measuring: "
        + ", ".join(dict.fromkeys(f"{before[0]:.1f} / {after[0]:.1f}" for before, after in loads)) + ".", "",
        f"Setting: CNN channels {cell['channels']} (one stage each, conv head per stage), trained {cell['epochs']} epochs "
        f"on the first {cell['train_size']} training images (batch 128, Adam lr {cell['lr']}), seeds "
        f"{sorted({r['seed'] for r in records})}. "
        f"Thresholds calibrated on the 5 000-image validation split for <= {cell['max_drop']} pt accuracy loss "
        "against the last exit; every number below is on the 10 000-image test split. Cost = FLOPs counted by "
        "`FlopCounterMode` (convolutions and matrix products) relative to the full network (all blocks, last head "
        "only); the early-exit cost includes every head a sample ran. Mean ± sd over seeds.", "",
        "## Per-exit test accuracy (%) and overthinking", "",
        "Overthinking (Shallow-Deep Networks): some earlier exit is right while the last exit is wrong (% of test samples).", "",
        "| rule | " + " | ".join(f"exit {k + 1}" for k in range(len(records[0]["exit_test_accuracy"]))) + " | overthinking |",
        "|---|" + "---|" * (len(records[0]["exit_test_accuracy"]) + 1),
    ]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        lines.append(f"| {rule} | " + " | ".join(mean_sd([r["exit_test_accuracy"][k] for r in rs], 100) for k in range(len(rs[0]["exit_test_accuracy"]))) + f" | {mean_sd([r['overthinking_rate'] for r in rs], 100)} |")
    lines += ["", "## Where the cost is: FLOPs vs measured time per stage (batch 256, one thread)", "",
              "Share of the full network (all blocks + last head) per block; FLOPs count convolutions and matrix "
              "products only, while BatchNorm, ReLU and max-pooling (not counted) cost time on the largest maps.", "",
              "| rule | " + " | ".join(f"block {k + 1} FLOPs / time" for k in range(len(records[0]["block_flops"]))) + " |",
              "|---|" + "---|" * len(records[0]["block_flops"])]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        cells = []
        for k in range(len(rs[0]["block_flops"])):
            flop_share = [r["block_flops"][k] / r["full_flops"] for r in rs]
            time_share = [r["stage_times_batch256"][k]["block_ms_per_sample"]
                          / (sum(t["block_ms_per_sample"] for t in r["stage_times_batch256"]) + r["stage_times_batch256"][-1]["head_ms_per_sample"]) for r in rs]
            cells.append(f"{mean_sd(flop_share, 100, 1)} % / {mean_sd(time_share, 100, 1)} %")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines += ["", f"## At <= {cell['max_drop']} pt loss on validation (test numbers)", "",
              "| rule | policy | test acc. drop (pt) | FLOPs saved (%) | exits (test histogram, seed 0) | agreement with last (%) |",
              "|---|---|---|---|---|---|"]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        for name in POLICIES:
            ps = [r["policies"][name] for r in rs]
            lines.append(f"| {rule} | {name} | {mean_sd([p['accuracy_drop_pt'] for p in ps])} | {mean_sd([p['flops_saved_fraction'] for p in ps], 100, 1)} | "
                         f"{ps[0]['exit_histogram']} | {mean_sd([p['agreement_with_last_exit'] for p in ps], 100)} |")
    lines += ["", "## Measured wall-clock speed-up of the real runner vs the full network", "",
              "The runner stops rows that exit and feeds only the rest to later blocks. One torch thread; each chunk "
              f"(25 batches of 1, or 4 batches of 256) is run {cell['rounds']} times by each method in turn and its fastest "
              f"time kept; batch 1 over the first {cell['batch1_samples']} test images, batch 256 over all 10 000. "
              "'runner, no exit' is the runner with infinite thresholds: its overhead (every head, the policy, the bookkeeping).", "",
              "| rule | policy | batch | full (ms/sample) | runner, no exit (ms/sample) | early exit (ms/sample) | speed-up | FLOPs speed-up (1 / relative cost) | runner == offline |",
              "|---|---|---|---|---|---|---|---|---|"]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        for name in TIMED:
            for i in range(2):
                ts = [r["policies"][name]["timing"][i] for r in rs]
                flop_speedup = [1 / r["policies"][name]["relative_cost"] for r in rs]
                agree = all(r["policies"][name]["runner_agrees_with_offline"] for r in rs)
                lines.append(f"| {rule} | {name} | {ts[0]['batch']} | {mean_sd([t['full_ms_per_sample'] for t in ts], 1, 3)} | "
                             f"{mean_sd([t['runner_no_exit_ms_per_sample'] for t in ts], 1, 3)} | {mean_sd([t['early_exit_ms_per_sample'] for t in ts], 1, 3)} | {mean_sd([t['speedup'] for t in ts])}x | {mean_sd(flop_speedup)}x | {agree} |")
    lines += ["", "## Risk-controlled thresholds (Learn-then-Test, max-prob, delta = "
              f"{cell['max_drop']} pt, epsilon = 0.1)", "",
              "| rule | test acc. drop (pt) | FLOPs saved (%) | violation rate over 100 random halves of val | mean drop on held-out half (pt) |", "|---|---|---|---|---|"]
    for rule in rules:
        rs = [r["risk_controlled"] for r in records if r["rule"] == rule]
        lines.append(f"| {rule} | {mean_sd([x['test']['accuracy_drop_pt'] for x in rs])} | {mean_sd([x['test']['flops_saved_fraction'] for x in rs], 100, 1)} | "
                     f"{mean_sd([x['violation_on_val_splits']['violation_rate'] for x in rs])} | {mean_sd([x['violation_on_val_splits']['mean_drop'] for x in rs], 100)} |")
    lines += ["", "## Anchors", ""] + [f"- **{k}**: {v}" for k, v in ANCHORS.items()]
    first = {r["rule"]: r for r in records if r["seed"] == records[0]["seed"]}
    curves = {f"{rule} {split}": tuple(r["entropy_curve"][split]) for rule, r in first.items() for split in ("val", "test")}
    plot_accuracy_cost(out / "curves.png", curves, title=f"Fashion-MNIST CNN, entropy exits (seed {records[0]['seed']})")
    plot_exit_histogram(out / "exits.png", {rule: r["policies"]["entropy"]["exit_histogram"] for rule, r in first.items()},
                        title=f"test samples per exit (entropy, <= {cell['max_drop']:g} pt on val)")
    lines += ["", f"Figures: [curves.png](curves.png) (entropy policy accuracy-cost, validation and test, seed "
              f"{records[0]['seed']}), [exits.png](exits.png) (test exit histogram, entropy policy, same seed). "
              "Every number: [cells.json](cells.json).", ""]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rules", nargs="+", default=["local", "joint"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=55000)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 32])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-drop", type=float, default=0.5, help="accuracy loss allowed on val, in points")
    p.add_argument("--batch1-samples", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--stage", choices=("all", "train"), default="all", help="train: only train the checkpoints")
    p.add_argument("--work", default="/tmp/locallearn_early_exit", help="folder for checkpoints")
    p.add_argument("--lock", default="/tmp/locallearn-bench.lock", help="the benchmarks' common lock file")
    p.add_argument("--lock-wait", type=float, default=900, help="seconds to wait for the lock before measuring anyway")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One cell per rule and seed, with every setting its numbers depend on."""
    return [{"rule": rule, "seed": seed, "epochs": args.epochs, "train_size": args.train_size, "channels": args.channels,
             "lr": args.lr, "max_drop": args.max_drop, "batch1_samples": args.batch1_samples, "rounds": args.rounds}
            for rule in args.rules for seed in args.seeds]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    """Train every cell (checkpoints reused), then, under the benchmarks' lock, measure each."""
    full = datasets.load("fashion-mnist")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    by_size: dict[int, Dataset] = {}
    paths = []
    for cell in todo:
        n = cell["train_size"]
        if n not in by_size:
            by_size[n] = Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_val, full.y_val, full.x_test,
                                 full.y_test, full.num_classes)
        paths.append(train_one(cell, by_size[n], args.work))
    if args.stage == "train":
        return
    lock = take_lock(args.lock, args.lock_wait)
    print(f"benchmark lock {'taken' if lock else 'NOT taken (timed out)'}", flush=True)
    for cell, path in zip(todo, paths):
        before = load_average()
        record = measure_one(path, by_size[cell["train_size"]], cell)
        add(cell, {**record, "lock_taken": lock is not None, "load_average_before_after": [before, load_average()]})
