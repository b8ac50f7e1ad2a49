"""``torch.compile`` of every stage's block (``TrainConfig.compile``, ``--compile``) against eager, on one CPU thread.

Command: ``python -m benchmarks compile_speed``. For the MLP 3x1024 and the CNN 16-32-32 under ``local``
(``--rules``), on the first ``--samples`` Fashion-MNIST training images, batch 128, Adam 1e-3: an eager and
a compiled Trainer are built from the same seed; each first trains one warm-up epoch (the compiled one
compiles there: its wall time is reported, since the compiler's worker processes are not this thread),
then both train ``--rounds`` epochs in turns, timed by the thread's CPU time (the machine is shared). The
speed-up is eager / compiled, the median over rounds; the two nets' weights after the same epochs are
compared too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

import locallearn as ll
from locallearn.provenance import load_average
from locallearn.bench.programs.throughput import MODELS, _subset

TITLE = "torch.compile against eager (CPU)"
DESCRIPTION = "Training epochs with every stage's block compiled (--compile) against eager, MLP 3x1024 and CNN 16-32-32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=2560, help="training images per epoch (the first N)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each, in turns")
    parser.add_argument("--rules", default="local", help="comma-separated rules")
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"model": m, "rule": r, "samples": args.samples, "rounds": args.rounds, "batch_size": 128, "lr": 1e-3}
            for m in MODELS for r in args.rules.split(",")]


def _trainer(cell: dict[str, Any], ds: ll.data.Dataset, compiled: bool) -> ll.Trainer:
    torch.manual_seed(0)
    net = MODELS[cell["model"]](ds)
    config = ll.TrainConfig(epochs=1000, batch_size=cell["batch_size"], lr=cell["lr"], eval_every=0, progress=False,
                            compile=compiled)
    return ll.Trainer(net, ds, rule=cell["rule"], config=config)


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    full = ll.data.load("fashion-mnist", data_dir=args.data_dir)
    for cell in todo:
        ds = _subset(full, cell["samples"])
        load_start = load_average()
        trainers = {"eager": _trainer(cell, ds, False), "compiled": _trainer(cell, ds, True)}
        first = {}
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.fit(epochs=1)
            first[name] = time.perf_counter() - start
        times: dict[str, list[float]] = {name: [] for name in trainers}
        for _ in range(cell["rounds"]):
            for name, trainer in trainers.items():
                start = time.thread_time()
                trainer.fit(epochs=1)
                times[name].append(time.thread_time() - start)
        gap = max((a - b).abs().max().item() for a, b in zip(trainers["eager"].net.parameters(),
                                                              trainers["compiled"].net.parameters()))
        add(cell, {"first_epoch_wall_s": first, "epoch_cpu_s": times, "max_weight_gap": gap,
                   "load": [load_start, load_average()]})


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    lines = ["| model | rule | eager CPU s / epoch | compiled CPU s / epoch | speed-up (eager / compiled) | first epoch wall s: eager, compiled (compiling) | largest weight gap after the same epochs | load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        c, t = r["cell"], r["epoch_cpu_s"]
        eager, compiled = statistics.median(t["eager"]), statistics.median(t["compiled"])
        ratio = statistics.median(e / k for e, k in zip(t["eager"], t["compiled"]))
        lines.append(f"| {c['model']} | {c['rule']} | {eager:.2f} | {compiled:.2f} | {ratio:.2f}x | "
                     f"{r['first_epoch_wall_s']['eager']:.1f}, {r['first_epoch_wall_s']['compiled']:.1f} | "
                     f"{r['max_weight_gap']:.1e} | {r['load'][0][0]} → {r['load'][1][0]} |")
    cell = records[0]["cell"]
    return [f"{cell['samples']} training images per epoch, batch {cell['batch_size']}, Adam {cell['lr']} (fused), "
            f"{cell['rounds']} timed epochs of each in turns after a warm-up epoch, one torch thread, inductor's default "
            "CPU backend; the machine was shared (1-minute load in the last column).", "", *lines, ""]
