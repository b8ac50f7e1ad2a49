"""A vision transformer on Fashion-MNIST: e2e, joint, local and predsim, every block an exit; last-exit and
best-exit test accuracy, time per epoch, and early exits calibrated on validation for <= 0.5 pt loss with
their measured wall-clock speed-up at batch 1 and batch 256.

Command (the committed setting: seeds 0-2, 3 epochs, the first 12 000 training images, 7x7 patches, 4 blocks of
width 48): ``python -m benchmarks vit_fashion``. A cell is one (rule, seed): trained (checkpoint in
``--work``, reused when there), then measured; the measuring part waits for the benchmarks' common lock as
``early_exit`` does. Exits and blocks are numbered from 1.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import data as datasets
from locallearn import io
from locallearn.provenance import load_average
from locallearn.bench.programs.early_exit import mean_sd, speedup, take_lock
from locallearn.data import Dataset
from locallearn.exits import collect_exit_logits, evaluate, exit_report, stage_costs, sweep
from locallearn.experiment import RunSpec, make_trainer

TITLE = "Vision transformer on Fashion-MNIST (CPU): local rules and early exits"
DESCRIPTION = ("A ViT (patch embedding, class token, pre-norm blocks, one exit per block) trained by e2e, joint, "
               "local and predsim; per-exit accuracy, time per epoch, exits at a bounded accuracy loss and their "
               "measured speed-up")
POLICIES = ("max-prob", "entropy", "patience")
TIMED = ("max-prob", "patience")


def spec(cell: dict[str, Any]) -> RunSpec:
    model_kw = {"patch": cell["patch"], "dim": cell["dim"], "depth": cell["depth"], "heads": cell["heads"]}
    return RunSpec(data="fashion-mnist", model="vit", model_kw=model_kw, head_kw={"pool": cell["pool"]},
                   rule=cell["rule"], epochs=cell["epochs"], batch_size=cell["batch_size"], lr=cell["lr"],
                   seed=cell["seed"], eval_every=0, progress=False)


def train_one(cell: dict[str, Any], ds: Dataset, work: str) -> tuple[Path, dict[str, Any]]:
    """Train and checkpoint one cell (a checkpoint in ``work`` is reused); returns it and the training times."""
    name = "_".join(f"{k}{cell[k]}" for k in sorted(cell) if k not in ("max_drop", "batch1_samples", "batch256_samples", "rounds"))
    path = Path(work) / f"{name}.pt"
    times_path = path.with_suffix(".json")
    if path.exists() and times_path.exists():
        return path, io.read_json(times_path)
    trainer = make_trainer(spec(cell), ds)
    cpu = time.thread_time()
    trainer.fit()
    times = {"epoch_time_s": [r["epoch_time_s"] for r in trainer.result.history],
             "train_cpu_s": time.thread_time() - cpu}
    print(f"trained {cell['rule']} seed {cell['seed']}: {times}", flush=True)
    trainer.save_checkpoint(path)
    io.write_json(times_path, times)
    return path, times


def measure_one(path: Path, ds: Dataset, cell: dict[str, Any]) -> dict[str, Any]:
    trainer = make_trainer(spec(cell), ds)
    trainer.net.load_state_dict(io.load_checkpoint(path)["net"])
    net = trainer.net.eval()
    val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val", batch_size=500)
    test = collect_exit_logits(net, ds.x_test, ds.y_test, split="test", batch_size=500)
    costs = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], ds.input_shape)
    accuracy = (test.logits.argmax(-1) == test.labels).double().mean(1).tolist()
    record: dict[str, Any] = {"rule": cell["rule"], "seed": cell["seed"], "exit_test_accuracy": accuracy,
                              "exit_val_accuracy": (val.logits.argmax(-1) == val.labels).double().mean(1).tolist(),
                              "full_flops": costs.full, "policies": {}}
    for name in POLICIES:
        th = sweep(val, name, costs).target(cell["max_drop"] / 100)
        report = exit_report(test, evaluate(test, th, costs), costs)
        report.update(thresholds=list(th.values), val_accuracy=th.details["accuracy"], target_met_on_val=th.details["met"])
        if name in TIMED:
            report["timing"] = [speedup(net, th, ds.x_test[: cell["batch1_samples"]], 1, cell["rounds"], 25),
                                speedup(net, th, ds.x_test[: cell["batch256_samples"]], 256, cell["rounds"], 4)]
        record["policies"][name] = report
        print(f"  {cell['rule']} seed {cell['seed']} {name}: drop {report['accuracy_drop_pt']:.2f} pt, "
              f"FLOPs saved {100 * report['flops_saved_fraction']:.1f} %", flush=True)
    return record


def report(records: list[dict], args: argparse.Namespace, out: Path) -> list[str]:
    """Per-rule accuracy and time tables, the exit table and the measured speed-ups."""
    cell = records[0]["cell"]
    rules = list(dict.fromkeys(r["rule"] for r in records))
    k = len(records[0]["exit_test_accuracy"])
    loads = [r["load_average_before_after"] for r in records]
    lines = [
        f"Setting: ViT, {cell['patch']}x{cell['patch']} patches, {cell['depth']} pre-norm blocks of width {cell['dim']} "
        f"({cell['heads']} heads, MLP ratio 2), one exit per block (`token` head, pool `{cell['pool']}`); trained "
        f"{cell['epochs']} epochs on the FIRST {cell['train_size']} of the 55 000 training images (a subset, for a "
        f"shared 2-core CPU), batch {cell['batch_size']}, Adam lr {cell['lr']}, one torch thread, seeds "
        f"{sorted({r['seed'] for r in records})}. Accuracies on the 10 000-image test split; exit thresholds "
        f"calibrated on the 5 000-image validation split for <= {cell['max_drop']} pt loss against the last exit. "
        "Mean ± sd over seeds. The machine was shared with other jobs (1-minute load before / after measuring: "
        + ", ".join(dict.fromkeys(f"{a[0]:.1f} / {b[0]:.1f}" for a, b in loads)) + "); "
        + ("the measuring part held the benchmarks' lock for every cell." if all(r.get("lock_taken") for r in records)
           else "the measuring part did NOT hold the benchmarks' lock for every cell."), "",
        "## Accuracy and training time", "",
        "| rule | last exit (%) | best exit (%) | best exit (which) | " + " | ".join(f"exit {i + 1}" for i in range(k))
        + " | wall s / epoch | CPU s / epoch |", "|---|---|---|---|" + "---|" * (k + 2),
    ]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        best = [max(r["exit_test_accuracy"]) for r in rs]
        which = [1 + r["exit_test_accuracy"].index(max(r["exit_test_accuracy"])) for r in rs]
        per_epoch = [statistics.mean(r["epoch_time_s"]) for r in rs]
        cpu = [r["train_cpu_s"] / len(r["epoch_time_s"]) for r in rs]
        lines.append(f"| {rule} | {mean_sd([r['exit_test_accuracy'][-1] for r in rs], 100)} | {mean_sd(best, 100)} | "
                     f"{', '.join(map(str, which))} | " + " | ".join(mean_sd([r['exit_test_accuracy'][i] for r in rs], 100) for i in range(k))
                     + f" | {mean_sd(per_epoch, 1, 1)} | {mean_sd(cpu, 1, 1)} |")
    lines += ["", f"## Early exits at <= {cell['max_drop']} pt loss on validation (test numbers)", "",
              "`patience` is PABEE's policy (Zhou et al. 2020): leave once the prediction has held for p exits.", "",
              "| rule | policy | test acc. drop (pt) | FLOPs saved (%) | exits (test histogram, first seed) |", "|---|---|---|---|---|"]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        for name in POLICIES:
            ps = [r["policies"][name] for r in rs]
            lines.append(f"| {rule} | {name} | {mean_sd([p['accuracy_drop_pt'] for p in ps])} | "
                         f"{mean_sd([p['flops_saved_fraction'] for p in ps], 100, 1)} | {ps[0]['exit_histogram']} |")
    lines += ["", "## Measured wall-clock speed-up of the early-exit runner vs the full network", "",
              f"One torch thread; batch 1 over the first {cell['batch1_samples']} test images (chunks of 25), batch 256 "
              f"over the first {cell['batch256_samples']} (chunks of 4); each chunk run {cell['rounds']} times by each "
              "method in turn, fastest kept. 'runner, no exit' is the runner with infinite thresholds (its overhead).", "",
              "| rule | policy | batch | full (ms/sample) | runner, no exit (ms/sample) | early exit (ms/sample) | speed-up | FLOPs speed-up |",
              "|---|---|---|---|---|---|---|---|"]
    for rule in rules:
        rs = [r for r in records if r["rule"] == rule]
        for name in TIMED:
            for i in range(2):
                ts = [r["policies"][name]["timing"][i] for r in rs]
                lines.append(f"| {rule} | {name} | {ts[0]['batch']} | {mean_sd([t['full_ms_per_sample'] for t in ts], 1, 3)} | "
                             f"{mean_sd([t['runner_no_exit_ms_per_sample'] for t in ts], 1, 3)} | "
                             f"{mean_sd([t['early_exit_ms_per_sample'] for t in ts], 1, 3)} | {mean_sd([t['speedup'] for t in ts])}x | "
                             f"{mean_sd([1 / r['policies'][name]['relative_cost'] for r in rs])}x |")
    lines += ["", "Every number: [cells.json](cells.json).", ""]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rules", nargs="+", default=["e2e", "joint", "local", "predsim"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=12000)
    p.add_argument("--patch", type=int, default=7)
    p.add_argument("--dim", type=int, default=48)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--pool", choices=("cls", "mean"), default="cls")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-drop", type=float, default=0.5, help="accuracy loss allowed on val, in points")
    p.add_argument("--batch1-samples", type=int, default=200)
    p.add_argument("--batch256-samples", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work", default="/tmp/locallearn_vit_fashion", help="folder for checkpoints")
    p.add_argument("--lock", default="/tmp/locallearn-bench.lock", help="the benchmarks' common lock file")
    p.add_argument("--lock-wait", type=float, default=300, help="seconds to wait for the lock before measuring anyway")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One cell per (seed, rule), seed-major, with every setting its numbers depend on."""
    return [{"rule": rule, "seed": seed, "epochs": args.epochs, "train_size": args.train_size, "patch": args.patch,
             "dim": args.dim, "depth": args.depth, "heads": args.heads, "pool": args.pool, "batch_size": args.batch_size,
             "lr": args.lr, "max_drop": args.max_drop, "batch1_samples": args.batch1_samples,
             "batch256_samples": args.batch256_samples, "rounds": args.rounds}
            for seed in args.seeds for rule in args.rules]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    """Train then measure each cell in turn (so finished cells are kept if the run is stopped)."""
    full = datasets.load("fashion-mnist")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    for cell in todo:
        n = cell["train_size"]
        ds = Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_val, full.y_val, full.x_test, full.y_test,
                     full.num_classes)
        path, times = train_one(cell, ds, args.work)
        lock = take_lock(args.lock, args.lock_wait)
        try:
            before = load_average()
            record = measure_one(path, ds, cell)
            add(cell, {**record, **times, "lock_taken": lock is not None, "load_average_before_after": [before, load_average()]})
        finally:
            if lock is not None:
                lock.close()
