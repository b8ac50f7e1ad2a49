"""CPU training throughput as a fraction of the machine's matrix-multiply limit, and the engine against a
hand-written loop.

Command: ``python -m benchmarks throughput``. In one process, with one torch thread, in turns
(``--rounds`` rounds): the one-thread sgemm rate (a 128x1024 by 1024x1024 product, repeated), then one
training epoch of every configuration on the first ``--samples`` Fashion-MNIST training images, batch
128, Adam 1e-3: the MLP 3x1024 and the CNN 16-32-32 under ``local`` and ``e2e``, each trained by the
Trainer's schedule (``simultaneous``: data path, ``locallearn.backward``'s core, the per-stage fused Adam;
no evaluation) and by a hand-written PyTorch loop doing the same work (same batches, same optimisers).

Each step's FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, forward and backward); throughput = FLOPs of an epoch / CPU time of the epoch (thread
time: the machine is shared), and its fraction of the sgemm rate measured in the same round. The
medians over rounds are reported. Where the rest goes is measured apart: the data path alone (the
epoch's batches drawn and nothing done with them) and the optimiser alone (its steps repeated on the
epoch's last gradients).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import locallearn as ll
from locallearn.provenance import load_average
from locallearn.data import Dataset
from locallearn.schedules import TrainState, train_step

TITLE = "CPU throughput against the matrix-multiply limit"
DESCRIPTION = ("One-thread training throughput of the MLP 3x1024 and CNN 16-32-32 (local, e2e) as a fraction of "
               "this machine's sgemm rate measured in the same run, and the engine against a hand-written loop")

MODELS = {"mlp-3x1024": lambda ds: ll.build_mlp(ds.input_shape, (1024, 1024, 1024), ds.num_classes),
          "cnn-16-32-32": lambda ds: ll.build_cnn(ds.input_shape, (16, 32, 32), ds.num_classes)}
RULES = ("local", "e2e")
SGEMM = (128, 1024, 1024)  # (m, k, n)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=6400, help="training images per epoch (the first N)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of turns; the median round is reported")
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"samples": args.samples, "rounds": args.rounds, "batch_size": 128, "lr": 1e-3}]


def sgemm_rate(repeat: int = 60) -> float:
    """FLOP/s of a one-thread ``(128 x 1024) @ (1024 x 1024)`` product, by thread CPU time."""
    m, k, n = SGEMM
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    start = time.thread_time()
    for _ in range(repeat):
        a @ b
    return 2 * m * k * n * repeat / (time.thread_time() - start)


class _Run:
    """One (model, rule): a Trainer (its schedule is the engine's path) and a hand-written twin."""

    def __init__(self, model: str, rule: str, ds: Dataset, cell: dict[str, Any]) -> None:
        self.model, self.rule = model, rule
        torch.manual_seed(0)
        net = MODELS[model](ds)
        self.trainer = ll.Trainer(net, ds, rule=rule, config=ll.TrainConfig(
            epochs=1000, batch_size=cell["batch_size"], lr=cell["lr"], eval_every=0, progress=False))
        torch.manual_seed(0)
        self.hand_net = MODELS[model](ds)
        self.hand_opts = [torch.optim.Adam(s.parameters(), lr=cell["lr"], fused=True) for s in self.hand_net.stages]
        x, y = ds.x_train[: cell["batch_size"]], ds.y_train[: cell["batch_size"]]
        state = TrainState(net=net, rule=self.trainer.rule, optimizers=[None] * len(net.stages), x_train=x, y_train=y,
                           batch_size=len(x))
        with FlopCounterMode(display=False) as counter:
            train_step(state, x, y, range(len(net.stages)))
        self.flops_per_sample = counter.get_total_flops() / len(x)
        net.zero_grad(set_to_none=True)

    def engine_epoch(self) -> float:
        start = time.thread_time()
        self.trainer.fit(epochs=1)
        return time.thread_time() - start

    def hand_epoch(self, epoch: int) -> float:
        """The same epoch by hand: the Trainer's batches, each stage's loss backpropagated as the rule says."""
        net, source = self.hand_net, self.trainer.train_source
        net.train()
        start = time.thread_time()
        for x, y in source.epoch(epoch):
            for opt in self.hand_opts:
                opt.zero_grad(set_to_none=True)
            h, losses = x, []
            for k, stage in enumerate(net.stages):
                h_in = h.detach() if self.rule == "local" else h
                h = stage.block(h_in)
                if self.rule == "local":
                    F.cross_entropy(stage.head(h), y).backward()
                else:  # e2e: the last exit end to end, the other heads as probes on detached features
                    head_in = h if k == len(net.stages) - 1 else h.detach()
                    losses.append(F.cross_entropy(stage.head(head_in), y))
            if losses:
                torch.stack(losses).sum().backward()
            for opt in self.hand_opts:
                opt.step()
        return time.thread_time() - start

    def data_epoch(self, epoch: int) -> float:
        start = time.thread_time()
        for _ in self.trainer.train_source.epoch(epoch):
            pass
        return time.thread_time() - start

    def optimiser_epoch(self, steps: int) -> float:
        opts = [o for o in self.trainer.optimizers if o is not None]
        start = time.thread_time()
        for _ in range(steps):
            for opt in opts:
                opt.step()
        return time.thread_time() - start


def _subset(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.name, ds.x_train[:n], ds.y_train[:n], ds.x_val[:1], ds.y_val[:1], ds.x_test[:1], ds.y_test[:1],
                   ds.num_classes)


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    for cell in todo:
        ds = _subset(ll.data.load("fashion-mnist", data_dir=args.data_dir), cell["samples"])
        runs = [_Run(model, rule, ds, cell) for model in MODELS for rule in RULES]
        steps = len(runs[0].trainer.train_source)
        load_start = load_average()
        rounds: list[dict[str, Any]] = []
        for r in range(cell["rounds"]):
            record: dict[str, Any] = {"sgemm_flops": sgemm_rate(), "runs": {}}
            for run_ in runs:
                key = f"{run_.model} {run_.rule}"
                record["runs"][key] = {"engine_s": run_.engine_epoch(), "hand_s": run_.hand_epoch(r),
                                       "data_s": run_.data_epoch(r), "optimiser_s": run_.optimiser_epoch(steps)}
            record["sgemm_flops_after"] = sgemm_rate()
            rounds.append(record)
        add(cell, {"rounds": rounds, "steps": steps, "load": [load_start, load_average()],
                   "flops_per_sample": {f"{r.model} {r.rule}": r.flops_per_sample for r in runs}})


def summary(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per configuration: medians over rounds of the epoch CPU times, throughput, fraction of sgemm, engine/hand."""
    samples = record["cell"]["samples"]
    out = []
    for key, per_sample in record["flops_per_sample"].items():
        rows = [(r["runs"][key], (r["sgemm_flops"] + r["sgemm_flops_after"]) / 2) for r in record["rounds"]]
        flops = per_sample * samples
        med = lambda f: statistics.median(f(run, rate) for run, rate in rows)  # noqa: E731
        out.append({
            "config": key, "mflop_per_sample": per_sample / 1e6,
            "engine_s": med(lambda run, rate: run["engine_s"]), "hand_s": med(lambda run, rate: run["hand_s"]),
            "gflops": med(lambda run, rate: flops / run["engine_s"] / 1e9),
            "fraction": med(lambda run, rate: flops / run["engine_s"] / rate),
            "hand_fraction": med(lambda run, rate: flops / run["hand_s"] / rate),
            "engine_over_hand": med(lambda run, rate: run["engine_s"] / run["hand_s"]),
            "matmul_s": med(lambda run, rate: flops / rate),
            "data_s": med(lambda run, rate: run["data_s"]), "optimiser_s": med(lambda run, rate: run["optimiser_s"]),
        })
    return out


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    record = records[-1]
    cell = record["cell"]
    rates = [r["sgemm_flops"] / 1e9 for r in record["rounds"]] + [r["sgemm_flops_after"] / 1e9 for r in record["rounds"]]
    rows = summary(record)
    lines = [
        f"{cell['samples']} Fashion-MNIST training images per epoch ({record['steps']} steps of {cell['batch_size']}), "
        f"Adam {cell['lr']} (fused, one per stage), {cell['rounds']} rounds in turns, one torch thread. sgemm "
        f"{SGEMM[0]}x{SGEMM[1]} by {SGEMM[1]}x{SGEMM[2]}: {min(rates):.1f}-{max(rates):.1f} GFLOP/s over the run. "
        f"1-minute load {record['load'][0][0]} → {record['load'][1][0]}: the machine was shared, so every time is "
        "thread CPU time, and even that slows when other jobs share the caches.", "",
        "| model, rule | MFLOP / image (fwd + bwd) | CPU s / epoch | GFLOP/s | × sgemm limit | hand-written loop × sgemm | engine × hand-written |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r['mflop_per_sample']:.2f} | {r['engine_s']:.2f} | {r['gflops']:.1f} | "
                     f"{r['fraction']:.3f} | {r['hand_fraction']:.3f} | {r['engine_over_hand']:.3f} |")
    lines += ["", "Where an epoch's CPU time goes (medians; *matmul at the limit* = the epoch's FLOPs at the sgemm rate; "
              "data path and optimiser measured alone; *rest*: everything else, including matrix products running "
              "below the isolated rate):", "",
              "| model, rule | epoch s | matmul at the limit s | data path s | optimiser s | rest s |", "|---|---|---|---|---|---|"]
    for r in rows:
        rest = r["engine_s"] - r["matmul_s"] - r["data_s"] - r["optimiser_s"]
        lines.append(f"| {r['config']} | {r['engine_s']:.2f} | {r['matmul_s']:.2f} | {r['data_s']:.3f} | "
                     f"{r['optimiser_s']:.3f} | {rest:.2f} |")
    mlp = [r for r in rows if r["config"].startswith("mlp")]
    cnn = [r for r in rows if r["config"].startswith("cnn")]
    lines += ["", f"- Target MLP >= 0.85 of the sgemm limit: "
              + ", ".join(f"{r['config']} {r['fraction']:.3f} ({'met' if r['fraction'] >= 0.85 else 'NOT met'})" for r in mlp) + ".",
              "- Target CNN engine <= 1.02x a hand-written loop: "
              + ", ".join(f"{r['config']} {r['engine_over_hand']:.3f} ({'met' if r['engine_over_hand'] <= 1.02 else 'NOT met'})"
                          for r in cnn) + ".", ""]
    return lines
