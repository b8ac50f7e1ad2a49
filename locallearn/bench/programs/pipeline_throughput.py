"""Throughput and accuracy of the ``pipeline`` schedule against one process, and ``decoupled`` with a slow stage.

Run from the repository root, alone on the machine (others take the same lock):

    flock /tmp/locallearn-bench.lock python -m benchmarks pipeline_throughput

One cell: the whole run (its order of runs, rotated over seeds, is part of the measurement).
Stages and exits are numbered from 1.

Part 1 (throughput). Fashion-MNIST, a 2-stage MLP whose stages cost the same FLOPs per
training step (checked with ``torch.utils.flop_counter``; the second width is solved for).
At each batch size, in the same run and interleaved over seeds: ``simultaneous`` in this
process with 1 thread and with 2 threads, and ``pipeline`` with 2 workers of 1 thread.
Throughput = training samples / training time (the Trainer's ``epoch_time_s``; evaluation
excluded). For the pipeline that time includes starting the workers, the rendezvous and
gathering the stages every epoch; its workers' own loop throughput is reported beside it.

Part 2 (decoupled). The same net, batch 128, 1 thread: ``simultaneous`` against
``decoupled`` with buffer capacities 1, 8 and 64, reuse cap 4, and one stage (1 or 2)
2x slower: it updates on a tick with probability 0.5 (``speed_mode="random"``, seeded),
as in DGL's slow-worker simulation. (With the deterministic ``"ratio"`` mode and reuse
cap 2 the three capacities give identical runs: the buffer never holds more than one
usable batch.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

import locallearn as ll
from locallearn.schedules import TrainState, train_step

TITLE = "Pipeline throughput (Fashion-MNIST, 2 balanced stages)"
DESCRIPTION = ("Throughput and accuracy of the pipeline schedule (one process per stage) against one process, and "
               "the decoupled schedule with one stage 2x slower")


def step_flops(net: ll.LocalNet, x: torch.Tensor, y: torch.Tensor) -> list[int]:
    """FLOPs of one ``local`` training step of each stage (forward and backward) on batch ``x``."""
    state = TrainState(net=net, rule=ll.rules.create("local"), optimizers=[None] * len(net.stages),
                       x_train=x, y_train=y, batch_size=len(x), seed=0)
    flops, h = [], x
    for k, stage in enumerate(net.stages):
        with FlopCounterMode(display=False) as counter:
            train_step(state, h, y, [k])
        flops.append(counter.get_total_flops())
        with torch.no_grad():
            h = stage.block(h)
    net.zero_grad(set_to_none=True)
    return flops


def balanced_widths(ds: ll.data.Dataset, first: int) -> tuple[tuple[int, int], list[int]]:
    """The second stage's width that makes both stages' training FLOPs equal, and those FLOPs."""
    x, y = ds.x_train[:128], ds.y_train[:128]

    def second_minus_first(width: int) -> tuple[int, list[int]]:
        flops = step_flops(ll.build_mlp(ds.input_shape, (first, width), ds.num_classes), x, y)
        return flops[1] - flops[0], flops

    (low_gap, _), (high_gap, _) = second_minus_first(256), second_minus_first(2048)
    width = round(256 + (2048 - 256) * (-low_gap) / (high_gap - low_gap))  # the gap is linear in the width
    return (first, width), second_minus_first(width)[1]


def wait_for_quiet(max_load: float, max_wait_s: float) -> float:
    """Wait until the 1-minute load average is below ``max_load`` (at most ``max_wait_s``); return the wait."""
    start = time.monotonic()
    while os.getloadavg()[0] >= max_load and time.monotonic() - start < max_wait_s:
        time.sleep(10)
    return time.monotonic() - start


def train_run(ds, widths, *, schedule, batch_size, epochs, seed, threads) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    torch.set_num_threads(threads)
    ll.seed_everything(seed)
    net = ll.build_mlp(ds.input_shape, widths, ds.num_classes)
    config = ll.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, eval_every=0, progress=False)
    result = ll.Trainer(net, ds, rule="local", schedule=schedule, config=config).fit()
    train_s = sum(r["epoch_time_s"] for r in result.history)
    record = {
        "samples_per_s": len(ds.x_train) * epochs / train_s,
        "train_s": train_s,
        "test_accuracy": result.final("test"),
        "history": result.history,
        "load_1min": [load_before, os.getloadavg()[0]],
    }
    last = result.history[-1]
    if "worker_samples_per_s" in last:
        record["worker_samples_per_s"] = [statistics.mean(r["worker_samples_per_s"][w] for r in result.history) for w in range(2)]
        for key in ("worker_idle_s", "worker_send_wait_s", "worker_compute_s", "worker_wall_s"):
            record[key] = [sum(r[key][w] for r in result.history) for w in range(2)]
        record["overhead_s"] = sum(r["overhead_s"] for r in result.history)
    if "updates" in last:
        record["updates"] = [sum(r["updates"][k] for r in result.history) for k in range(2)]
    return record


def load_range(throughput: dict, decoupled: dict) -> str:
    loads = [v for rows in throughput.values() for records in rows.values() for r in records for v in r["load_1min"]]
    loads += [v for records in decoupled.values() for r in records for v in r["load_1min"]]
    return f"{min(loads):.2f} to {max(loads):.2f}"


def _one_stage_alone(ds, widths, stage: int, batch_size: int, epochs: int, seed: int, start, result) -> None:
    """Train one stage alone for the run's batches (the second on the first's fixed outputs); report the wall time."""
    torch.set_num_threads(1)
    ll.seed_everything(seed)
    net = ll.build_mlp(ds.input_shape, widths, ds.num_classes)
    optimizers = [torch.optim.Adam(s.parameters(), lr=1e-3) for s in net.stages]
    state = TrainState(net=net, rule=ll.rules.create("local"), optimizers=optimizers, x_train=ds.x_train,
                       y_train=ds.y_train, batch_size=batch_size, seed=seed)
    with torch.no_grad():
        inputs = ds.x_train if stage == 0 else torch.cat([net.stages[0].block(c) for c in ds.x_train.split(4096)])
    start.wait()
    begin = time.perf_counter()
    for epoch in range(epochs):
        state.epoch = epoch
        for h, y in state.batches(inputs, state.y_train):
            train_step(state, h, y, [stage])
    result.put((stage, time.perf_counter() - begin))


def independent_ceiling(ds, widths, *, batch_size: int, epochs: int, seed: int) -> dict[str, Any]:
    """Samples/s of the two stages trained at once in two independent 1-thread processes (no communication):
    what this machine allows two workers, the pipeline's ceiling."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start, result = context.Event(), context.Queue()
    processes = [context.Process(target=_one_stage_alone, args=(ds, widths, k, batch_size, epochs, seed, start, result))
                 for k in range(2)]
    load_before = os.getloadavg()[0]
    for process in processes:
        process.start()
    time.sleep(5)  # both have built their inputs
    start.set()
    walls = dict(result.get(timeout=3600) for _ in processes)
    for process in processes:
        process.join()
    return {"samples_per_s": len(ds.x_train) * epochs / max(walls.values()), "stage_wall_s": [walls[0], walls[1]],
            "load_1min": [load_before, os.getloadavg()[0]]}


def mean_std(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    m = statistics.mean(values) * scale
    s = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--width", type=int, default=1024, help="width of the first stage")
    parser.add_argument("--limit", type=int, default=None, help="use only this many training samples (smoke test)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait for a 1-minute load average below this")
    parser.add_argument("--max-wait", type=float, default=1800, help="seconds to wait for it at most")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One cell, the whole run."""
    return [{"epochs": args.epochs, "seeds": args.seeds, "batch_sizes": args.batch_sizes, "width": args.width,
             "limit": args.limit}]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    """Wait for a quiet machine, then measure throughput and the decoupled runs."""
    for cell in todo:
        add(cell, measure(args))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    waited = wait_for_quiet(args.max_load, args.max_wait)
    load_before = os.getloadavg()
    ds = ll.data.load("fashion-mnist")
    if args.limit:
        ds = dataclasses.replace(ds, x_train=ds.x_train[: args.limit], y_train=ds.y_train[: args.limit])
    widths, flops = balanced_widths(ds, args.width)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    seeds = list(range(args.seeds))
    configs = {
        "simultaneous, 1 process x 1 thread": dict(schedule="simultaneous", threads=1),
        "simultaneous, 1 process x 2 threads": dict(schedule="simultaneous", threads=2),
        "pipeline, 2 workers x 1 thread": dict(schedule=ll.schedules.create("pipeline", workers=2, threads=1), threads=1),
    }
    throughput: dict[str, dict[str, list[dict]]] = {}
    ceiling = "2 independent 1-thread processes, one stage each, no communication"
    for batch_size in batch_sizes:
        rows = throughput.setdefault(str(batch_size), {name: [] for name in configs})
        rows[ceiling] = []
        for seed in seeds:
            rows[ceiling].append(independent_ceiling(ds, widths, batch_size=batch_size, epochs=args.epochs, seed=seed))
            print(f"batch {batch_size} seed {seed} {ceiling}: {rows[ceiling][-1]['samples_per_s']:.0f} samples/s", flush=True)
            names = list(configs)
            names = names[seed % len(names):] + names[: seed % len(names)]  # rotate the order over seeds
            for name in names:
                record = train_run(ds, widths, batch_size=batch_size, epochs=args.epochs, seed=seed, **configs[name])
                rows[name].append(record)
                print(f"batch {batch_size} seed {seed} {name}: {record['samples_per_s']:.0f} samples/s, "
                      f"test {100 * record['test_accuracy'][-1]:.2f} %", flush=True)

    decoupled_configs = {"simultaneous": "simultaneous"}
    for slow in (0, 1):
        speeds = (0.5, 1.0) if slow == 0 else (1.0, 0.5)
        for capacity in (1, 8, 64):
            decoupled_configs[f"decoupled, capacity {capacity}, stage {slow + 1} 2x slower"] = ll.schedules.create(
                "decoupled", capacity=capacity, max_uses=4, speeds=speeds, speed_mode="random")
    decoupled: dict[str, list[dict]] = {name: [] for name in decoupled_configs}
    for seed in seeds:
        for name, schedule in decoupled_configs.items():
            record = train_run(ds, widths, schedule=schedule, batch_size=128, epochs=args.epochs, seed=seed, threads=1)
            decoupled[name].append(record)
            print(f"seed {seed} {name}: test {100 * record['test_accuracy'][-1]:.2f} %", flush=True)

    meta = {
        "waited_for_quiet_s": waited,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "epochs": args.epochs,
        "seeds": seeds,
        "widths": widths,
        "train_flops_per_batch_of_128": flops,
        "train_samples": len(ds.x_train),
    }
    return {"meta": meta, "throughput": throughput, "decoupled": decoupled}


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    """The throughput table, the targets, the per-worker times and the decoupled table."""
    return format_report(**{k: records[-1][k] for k in ("meta", "throughput", "decoupled")}).splitlines()


def format_report(meta: dict, throughput: dict, decoupled: dict) -> str:
    one, two, pipe = "simultaneous, 1 process x 1 thread", "simultaneous, 1 process x 2 threads", "pipeline, 2 workers x 1 thread"
    ceiling = "2 independent 1-thread processes, one stage each, no communication"
    lines = [
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in meta['load_average_before'])}; "
        f"after: {', '.join(f'{v:.2f}' for v in meta['load_average_after'])}; 1-minute load at the start and end of "
        f"every run: {load_range(throughput, decoupled)} (this benchmark itself adds 1-2 on 2 cores)  ",
        f"Net: MLP {meta['widths'][0]}-{meta['widths'][1]}, one stage per layer, linear heads, rule `local`, Adam 1e-3; "
        f"training FLOPs per batch of 128: stage 1 {meta['train_flops_per_batch_of_128'][0] / 1e6:.1f} M, "
        f"stage 2 {meta['train_flops_per_batch_of_128'][1] / 1e6:.1f} M  ",
        f"{meta['epochs']} epochs over {meta['train_samples']} training samples; seeds {meta['seeds']} "
        "(mean ± std over seeds; throughput runs interleaved, order rotated per seed).",
        "",
        "Throughput = training samples / training time (evaluation excluded). For the pipeline the time includes",
        "starting the workers, the rendezvous and gathering the stages back every epoch; *worker loop* is the",
        "slower worker's own samples/s inside its epoch loop. The row of 2 independent processes trains each stage",
        "alone in its own 1-thread process at the same time (stage 2 on stage 1's fixed outputs), with no",
        "communication and no waiting: the most two workers can get from this machine. Idle = time blocked waiting to receive; send wait =",
        "time blocked with the maximum number of sends in flight. Accuracy: test accuracy of the last exit.",
        "",
        "| batch | run | samples/s | x 1 thread | x 2 threads | worker loop samples/s | test acc % |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for batch, rows in throughput.items():
        base1 = [r["samples_per_s"] for r in rows[one]]
        base2 = [r["samples_per_s"] for r in rows[two]]
        for name, records in rows.items():
            speed = [r["samples_per_s"] for r in records]
            ratio1 = [a / b for a, b in zip(speed, base1)]
            ratio2 = [a / b for a, b in zip(speed, base2)]
            loop = mean_std([min(r["worker_samples_per_s"]) for r in records], digits=0) if "worker_samples_per_s" in records[0] else ""
            acc = mean_std([r["test_accuracy"][-1] for r in records], scale=100, digits=2) if "test_accuracy" in records[0] else "(not evaluated)"
            lines.append(f"| {batch} | {name} | {mean_std(speed, digits=0)} | {mean_std(ratio1, digits=2)} | "
                         f"{mean_std(ratio2, digits=2)} | {loop} | {acc} |")
        pipe_speed = [r["samples_per_s"] for r in rows[pipe]]
        gain1 = statistics.mean(a / b for a, b in zip(pipe_speed, base1))
        gain2 = statistics.mean(a / b for a, b in zip(pipe_speed, base2))
        loss = 100 * (statistics.mean(r["test_accuracy"][-1] for r in rows[one]) - statistics.mean(r["test_accuracy"][-1] for r in rows[pipe]))
        ceiling_speed = [r["samples_per_s"] for r in rows[ceiling]]
        gain0 = statistics.mean(a / b for a, b in zip(ceiling_speed, base1))
        share = statistics.mean(a / b for a, b in zip(pipe_speed, ceiling_speed))
        verdicts.append(
            f"- batch {batch}: two independent processes reach {gain0:.2f}x the 1-thread process; the pipeline reaches "
            f"{100 * share:.0f} % of that.  "
        )
        verdicts.append(
            f"  {gain1:.2f}x the 1-thread process (target >= 1.6x: {'met' if gain1 >= 1.6 else 'NOT met'}); "
            f"{gain2:.2f}x the 2-thread process (target >= 1x: {'met' if gain2 >= 1.0 else 'NOT met'}); "
            f"accuracy {loss:+.2f} pt below the 1-thread run (target <= 0.5 pt: {'met' if loss <= 0.5 else 'NOT met'})."
        )
    lines += ["", "Targets:", *verdicts, "", "Per-worker time of the pipeline (seconds over all epochs, mean over seeds):", "",
              "| batch | worker | compute s | idle (receive) s | send wait s | loop wall s | overhead s (whole run) |",
              "|---|---|---|---|---|---|---|"]
    for batch, rows in throughput.items():
        records = rows[pipe]
        for w in range(2):
            cells = [statistics.mean(r[key][w] for r in records) for key in ("worker_compute_s", "worker_idle_s", "worker_send_wait_s", "worker_wall_s")]
            overhead = statistics.mean(r["overhead_s"] for r in records)
            lines.append(f"| {batch} | {w + 1} (stage {w + 1}) | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {overhead:.2f} |")
    lines += ["", "## Decoupled, one stage 2x slower (batch 128, 1 thread, reuse cap 4)", "",
              "A 2x slower stage updates on a tick with probability 0.5 (one tick = one new data batch; seeded), so it",
              "sees about half the batches; the stage above a slow stage 1 reuses buffered batches (least reused,",
              "newest first, at most 4 uses each). With the deterministic every-second-tick mode and a reuse cap of 2",
              "the capacities give identical runs (the buffer never holds more than one usable batch), so the",
              "random mode is the one where capacity matters. Updates = per stage, all epochs.", "",
              "| run | test acc % (last exit) | test acc % (exit 1) | updates (mean) |", "|---|---|---|---|"]
    for name, records in decoupled.items():
        updates = f"{[round(statistics.mean(r['updates'][k] for r in records)) for k in range(2)]}" if "updates" in records[0] else "every batch"
        lines.append(f"| {name} | {mean_std([r['test_accuracy'][-1] for r in records], scale=100, digits=2)} | "
                     f"{mean_std([r['test_accuracy'][0] for r in records], scale=100, digits=2)} | {updates} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
