"""Data-parallel training on CPU (gloo): throughput per process and communication time per stage.

Run from the repository root, alone on the machine (others take the same lock):

    flock /tmp/locallearn-bench.lock python benchmarks/data_parallel.py

Writes benchmarks/results/data_parallel/results.md and results.json.

Fashion-MNIST (the first ``--samples`` training images), MLP 3x1024, batch 128, Adam 1e-3, one
epoch, one torch thread per process. For each rule (``local``, ``e2e``), in the same run and in
turns (``--rounds`` rounds): one ordinary process (the baseline), 2 processes under
``torchrun --standalone`` with the all-reduces overlapped with the next stage's compute (the
default), and 2 processes with each all-reduce waited for at once (``overlap=False``: its
time is then the whole communication time of that stage, including waiting for the peer).

Per process: samples it trained on / the Trainer's training time of the epoch (wall; evaluation
excluded) and / its CPU time (``time.process_time`` over the epoch: all its threads, gloo's
included). Ratios are against the baseline of the same rule and round. Communication per stage:
seconds per step blocked in the all-reduce of that stage (``wait_s``) plus packing and starting
it (``issue_s``), from ``locallearn.distributed.GradientAverager``. The machine has 2 cores
shared with other work; the load average is recorded.

The script also runs the issue's command (``torchrun --standalone --nproc_per_node 2 -m
locallearn.cli train --data digits --rule local --epochs 3``) and records its output.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import locallearn as ll
from locallearn import io

OUT = Path(__file__).parent / "results" / "data_parallel"
COMMAND = "flock /tmp/locallearn-bench.lock python benchmarks/data_parallel.py"
SETTINGS = {  # name -> (processes, overlap)
    "1 process": (1, None),
    "2 processes, overlapped all-reduce": (2, True),
    "2 processes, blocking all-reduce": (2, False),
}
ISSUE_COMMAND = ["-m", "locallearn.cli", "train", "--data", "digits", "--rule", "local", "--epochs", "3", "--no-progress"]


def worker(args: argparse.Namespace) -> None:
    """One process of one setting: train one epoch and write its measurements to ``args.worker_out``."""
    torch.set_num_threads(1)
    full = ll.data.load("fashion-mnist", data_dir=args.data_dir)
    n = args.samples
    ds = ll.data.Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_val[:1000], full.y_val[:1000],
                         full.x_test[:2000], full.y_test[:2000], num_classes=full.num_classes)
    ll.seed_everything(0)
    net = ll.build_mlp(ds.input_shape, (1024, 1024, 1024), ds.num_classes)
    config = ll.TrainConfig(epochs=1, batch_size=128, lr=1e-3, eval_every=0, progress=False)
    trainer = ll.Trainer(net, ds, rule=args.rule, config=config)
    parallel = trainer.data_parallel
    if parallel is not None:
        parallel.grad_sync.overlap = args.overlap == "yes"
    cpu: list[float] = []
    train_epoch = trainer.schedule.train_epoch

    def timed(state: Any) -> list[int]:
        start = time.process_time()
        trained = train_epoch(state)
        cpu.append(time.process_time() - start)
        return trained

    trainer.schedule.train_epoch = timed
    record = trainer.fit().history[-1]
    steps = len(trainer.train_source)
    io.write_json(Path(args.worker_out) / f"rank{0 if parallel is None else parallel.rank}.json", {
        "rank": 0 if parallel is None else parallel.rank,
        "world_size": 1 if parallel is None else parallel.world_size,
        "backend": None if parallel is None else parallel.backend,
        "samples": record.get("process_samples", n),
        "steps": steps,
        "train_wall_s": record["epoch_time_s"],
        "train_cpu_s": cpu[0],
        "grad_sync": record.get("grad_sync", []),
        "test_accuracy_last_exit": record["test_accuracy"][-1],
    })


def run_setting(rule: str, setting: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    processes, overlap = SETTINGS[setting]
    with tempfile.TemporaryDirectory() as out:
        own = [__file__, "--worker", "--rule", rule, "--samples", str(args.samples), "--worker-out", out,
               "--overlap", "yes" if overlap else "no"] + (["--data-dir", args.data_dir] if args.data_dir else [])
        launcher = [sys.executable] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR")}
        done = subprocess.run(launcher + own, capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{setting} ({rule}) failed:\n{done.stderr[-3000:]}")
        return [io.read_json(Path(out) / f"rank{r}.json") for r in range(processes)]


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (rule, setting): per-process throughput, ratios against the same round's baseline, comm per stage."""
    rows = []
    for rule in dict.fromkeys(r["rule"] for r in runs):
        for setting in SETTINGS:
            mine = [r for r in runs if r["rule"] == rule and r["setting"] == setting]
            per_round = []
            for run in mine:
                base = next(b for b in runs if b["rule"] == rule and b["setting"] == "1 process" and b["round"] == run["round"])["ranks"][0]
                ranks = run["ranks"]
                wall = [p["samples"] / p["train_wall_s"] for p in ranks]
                cpu = [p["samples"] / p["train_cpu_s"] for p in ranks]
                total = sum(p["samples"] for p in ranks) / max(p["train_wall_s"] for p in ranks)
                comm = {}
                for p in ranks:
                    for entry in p["grad_sync"]:
                        label = ",".join(str(k + 1) for k in entry["stages"])
                        comm.setdefault(label, []).append(1e3 * (entry["issue_s"] + entry["wait_s"]) / entry["calls"])
                per_round.append({
                    "samples_per_s_per_process": statistics.mean(wall),
                    "samples_per_cpu_s_per_process": statistics.mean(cpu),
                    "total_samples_per_s": total,
                    "x_baseline_per_process_wall": statistics.mean(wall) / (base["samples"] / base["train_wall_s"]),
                    "x_baseline_per_process_cpu": statistics.mean(cpu) / (base["samples"] / base["train_cpu_s"]),
                    "x_baseline_total": total / (base["samples"] / base["train_wall_s"]),
                    "comm_ms_per_step": {k: statistics.mean(v) for k, v in comm.items()},
                    "comm_share_of_wall": sum(e["issue_s"] + e["wait_s"] for p in ranks for e in p["grad_sync"])
                    / sum(p["train_wall_s"] for p in ranks),
                    "bytes_per_step": {",".join(str(k + 1) for k in e["stages"]): e["bytes"] // e["calls"] for e in ranks[0]["grad_sync"]},
                    "test_accuracy_last_exit": ranks[0]["test_accuracy_last_exit"],
                })
            row: dict[str, Any] = {"rule": rule, "setting": setting, "rounds": len(per_round)}
            for key in per_round[0]:
                if isinstance(per_round[0][key], dict):
                    row[key] = {k: _ms(statistics.mean(r[key][k] for r in per_round), statistics.pstdev(r[key][k] for r in per_round)) for k in per_round[0][key]}
                else:
                    row[key] = _ms(statistics.mean(r[key] for r in per_round), statistics.pstdev(r[key] for r in per_round))
            rows.append(row)
    return rows


def _ms(mean: float, std: float) -> list[float]:
    return [mean, std]


def _fmt(value: list[float], digits: int = 2, scale: float = 1.0) -> str:
    return f"{value[0] * scale:.{digits}f} ± {value[1] * scale:.{digits}f}"


def report(rows: list[dict[str, Any]], meta: dict[str, Any], issue_run: dict[str, Any]) -> str:
    lines = [
        "# Data-parallel training on CPU (gloo): throughput per process, communication per stage",
        "",
        f"Command: `{meta['command']}`  ",
        f"Revision: {meta['revision']}; date (UTC): {meta['date']}  ",
        f"Machine: {meta['machine']}  ",
        f"Load average (1, 5, 15 min) before: {meta['load_before']}; after: {meta['load_after']}  ",
        f"Fashion-MNIST, first {meta['samples']} training images, MLP 3x1024 (3 stages), batch 128, Adam 1e-3, 1 epoch, "
        f"1 torch thread per process; {meta['rounds']} rounds, settings in turns (mean ± std over rounds).",
        "",
        "Per process: samples it trained / its training time (wall, evaluation excluded) or its CPU time (all its "
        "threads). Total: all samples / the slower process's wall time. x 1 process: ratio to the one-process run "
        "of the same rule and round. Communication: ms per step in the stage's all-reduce (packing + starting it + "
        "time blocked waiting for it; overlapped: only the part not hidden behind the next stage's compute; "
        "blocking: all of it, including waiting for the other process to reach it).",
        "",
        "| rule | setting | samples/s per process | x 1 process (wall) | samples per CPU-s per process | x 1 process (CPU) "
        "| total samples/s | x 1 process (total) | comm ms/step per stage | comm share of wall | MB/step per stage | test acc % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        comm = "; ".join(f"{k}: {_fmt(v)}" for k, v in r["comm_ms_per_step"].items()) or "-"
        size = "; ".join(f"{k}: {v[0] / 1e6:.2f}" for k, v in r["bytes_per_step"].items()) or "-"
        lines.append(
            f"| {r['rule']} | {r['setting']} | {_fmt(r['samples_per_s_per_process'], 0)} | {_fmt(r['x_baseline_per_process_wall'])} "
            f"| {_fmt(r['samples_per_cpu_s_per_process'], 0)} | {_fmt(r['x_baseline_per_process_cpu'])} "
            f"| {_fmt(r['total_samples_per_s'], 0)} | {_fmt(r['x_baseline_total'])} | {comm} "
            f"| {_fmt(r['comm_share_of_wall'], 1, 100)} % | {size} | {_fmt(r['test_accuracy_last_exit'], 2, 100)} |"
        )
    lines += [
        "",
        "## The issue's command",
        "",
        f"`{issue_run['command']}` (exit status {issue_run['returncode']}; {issue_run['wall_s']:.1f} s wall), stdout:",
        "",
        "```",
        issue_run["stdout"].strip(),
        "```",
        "",
        f"Files it wrote: {', '.join(issue_run['files'])}; `config.data_parallel`: `{json.dumps(issue_run['data_parallel'])}`.",
        "",
    ]
    return "\n".join(lines)


def run_issue_command() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cwd:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   *ISSUE_COMMAND, "--out", "results.json"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=900)
        wall = time.perf_counter() - start
        files = sorted(os.listdir(cwd))
        config = io.read_json(Path(cwd) / "results.json")["config"] if "results.json" in files else {}
    shown = "torchrun --standalone --nproc_per_node 2 " + " ".join(ISSUE_COMMAND) + " --out results.json"
    return {"command": shown, "returncode": done.returncode, "wall_s": wall, "stdout": done.stdout, "files": files,
            "data_parallel": config.get("data_parallel")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20000, help="training images used (the first N)")
    parser.add_argument("--rules", default="local,e2e")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=OUT, help="folder of results.md and results.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rule", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--overlap", default="yes", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    command = COMMAND + "".join(f" {a}" for a in sys.argv[1:])
    load_before = os.getloadavg()
    runs = []
    for round_ in range(args.rounds):
        for rule in args.rules.split(","):
            settings = list(SETTINGS)
            settings = settings[round_ % len(settings):] + settings[: round_ % len(settings)]  # rotate the order
            for setting in settings:
                print(f"round {round_ + 1}, {rule}, {setting}", flush=True)
                runs.append({"round": round_, "rule": rule, "setting": setting, "ranks": run_setting(rule, setting, args)})
    issue_run = run_issue_command()
    meta = {
        "command": command,
        "revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": ", ".join(f"{k} {v}" for k, v in io.machine().items()),
        "load_before": ", ".join(f"{v:.2f}" for v in load_before),
        "load_after": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "samples": args.samples,
        "rounds": args.rounds,
    }
    rows = summarise(runs)
    io.write_json(args.out / "results.json", {"meta": meta, "rows": rows, "runs": runs, "issue_command": issue_run})
    (args.out / "results.md").write_text(report(rows, meta, issue_run))
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
