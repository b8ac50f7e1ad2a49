"""Searched cuts against equal cuts: ``locallearn.search_cuts`` (a SEDONA-style proxy) on a CIFAR ResNet,
then the same network trained greedily with the searched and with the evenly spread cut points.

Command (the committed setting): ``python -m benchmarks cuts``: ResNet-20 on Fashion-MNIST, K = 4, ``local``
(each module's own head), seeds 0-2. Per seed the search scores every candidate cut (the stem and each
residual block but the last) by the last exit's validation cross-entropy after ``--search-steps`` steps of
training with the network cut there alone, and keeps the best K - 1; then both splits are trained for
``--epochs`` epochs on the first ``--train-size`` training images (the search draws its batches from the same
images and reads its proxy on the first ``--search-val`` validation images, never on the test split) and
evaluated on the first ``--eval-size`` validation and test images. A cell is one (seed, split); the search of a
seed is stored with its ``searched`` cell.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

from locallearn import data as datasets
from locallearn import models
from locallearn.bench.programs.early_exit import mean_sd
from locallearn.cuts import PROXY, search_cuts
from locallearn.data import Dataset
from locallearn.experiment import RunSpec, make_trainer, training_subset
from locallearn.models.resnet import even_cuts

TITLE = "Searched cuts against equal cuts (SEDONA-style proxy), ResNet on Fashion-MNIST (CPU)"
DESCRIPTION = ("search_cuts on a CIFAR ResNet, then greedy training with the searched and with evenly spread cut "
               "points: per-exit test accuracy, training time, the search's cost and every candidate's score")
SPLITS = ("equal", "searched")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="resnet20", choices=("resnet20", "resnet32", "resnet56", "resnet110"))
    p.add_argument("--stages", type=int, default=4, help="K, the number of local modules")
    p.add_argument("--rule", default="local")
    p.add_argument("--search-steps", type=int, default=40, help="training steps per candidate in the search")
    p.add_argument("--search-lr", type=float, default=0.05, help="SGD (momentum 0.9) learning rate of the search")
    p.add_argument("--search-val", type=int, default=1000, help="validation images the proxy is read on")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=1500)
    p.add_argument("--eval-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the training (constant)")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One cell per (seed, split), seed-major, with every setting its numbers depend on."""
    keys = ("model", "stages", "rule", "search_steps", "search_lr", "search_val", "epochs", "train_size", "eval_size",
            "batch_size", "lr")
    return [{"seed": seed, "split": split, **{k: getattr(args, k) for k in keys}} for seed in args.seeds for split in SPLITS]


def _search(cell: dict[str, Any], ds: Dataset) -> dict[str, Any]:
    cpu = time.thread_time()
    found = search_cuts(cell["model"], cell["stages"], ds, rule=cell["rule"], steps=cell["search_steps"],
                        batch_size=cell["batch_size"], lr=cell["search_lr"], seed=cell["seed"], val_size=cell["search_val"])
    return {"cuts": [list(c) for c in found.cuts], "candidates": [list(c) for c in found.candidates],
            "scores": list(found.scores), "last_exit_accuracy": list(found.last_exit_accuracy),
            "local_exit_accuracy": list(found.local_exit_accuracy), "proxy": found.proxy, "cpu_s": time.thread_time() - cpu}


def _train(cell: dict[str, Any], cuts: list[list[int]], ds: Dataset) -> dict[str, Any]:
    spec = RunSpec(data="fashion-mnist", model=cell["model"], model_kw={"stages": cell["stages"], "cuts": cuts},
                   rule=cell["rule"], epochs=cell["epochs"], batch_size=cell["batch_size"], lr=cell["lr"],
                   seed=cell["seed"], eval_every=0, progress=False)
    trainer = make_trainer(spec, ds)
    cpu = time.thread_time()
    trainer.fit()
    return {"cuts": cuts, "exit_test_accuracy": trainer.result.final("test"),
            "exit_val_accuracy": trainer.result.final("val"), "train_cpu_s": time.thread_time() - cpu}


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    """Each seed's search (once, for its ``searched`` cell), then each cell's training."""
    full = datasets.load("fashion-mnist")
    for cell in todo:
        ds = training_subset(full, cell["train_size"], cell["eval_size"])
        if cell["split"] == "searched":  # the search reads the training images and the first validation ones only
            search = _search(cell, ds)
            record = {**_train(cell, search["cuts"], ds), "search": search}
        else:
            record = _train(cell, [list(c) for c in even_cuts(models.create(cell["model"]).depth, cell["stages"])], ds)
        print(f"seed {cell['seed']} {cell['split']}: cuts {record['cuts']}, test {record['exit_test_accuracy']}", flush=True)
        add(cell, record)


def _cuts(cuts: list[list[int]]) -> str:
    return ", ".join(f"({g}, {b})" for g, b in cuts)


def report(records: list[dict], args: argparse.Namespace, out) -> list[str]:
    """The accuracy table of both splits, the searched cuts per seed and every candidate's score."""
    cell = records[0]["cell"]
    seeds = sorted({r["cell"]["seed"] for r in records})
    by = {(r["cell"]["seed"], r["cell"]["split"]): r for r in records}
    k = cell["stages"]
    lines = [
        f"Setting: {cell['model']} on Fashion-MNIST in K = {k} local modules, rule `{cell['rule']}` (each module "
        f"learns from its own head), Adam lr {cell['lr']}, batch {cell['batch_size']}, {cell['epochs']} epochs on the "
        f"FIRST {cell['train_size']} training images (a subset, for a shared 2-core CPU), evaluated on the first "
        f"{cell['eval_size']} validation and test images; one torch thread; seeds {seeds}. A cut `(g, b)` ends a "
        "module after block b of group g (`(0, 0)`: after the stem). Equal = `even_cuts` (the units spread evenly).",
        "",
        f"Search (`locallearn.search_cuts`): proxy = {PROXY}; {cell['search_steps']} SGD steps (momentum 0.9, lr "
        f"{cell['search_lr']}, batch {cell['batch_size']}) per candidate from the seed's initialisation, the proxy read "
        f"on the first {cell['search_val']} validation images; the K - 1 candidates with the lowest proxy are kept.",
        "",
        "## Test accuracy (%), mean ± sd over seeds",
        "",
        "| split | " + " | ".join(f"exit {i + 1}" for i in range(k)) + " | last exit | train CPU s | search CPU s |",
        "|---|" + "---|" * (k + 3),
    ]
    for split in SPLITS:
        rs = [by[(s, split)] for s in seeds if (s, split) in by]
        if not rs:
            continue
        search = mean_sd([r["search"]["cpu_s"] for r in rs], 1, 0) if split == "searched" else "–"
        lines.append(f"| {split} | " + " | ".join(mean_sd([r["exit_test_accuracy"][i] for r in rs], 100) for i in range(k))
                     + f" | {mean_sd([r['exit_test_accuracy'][-1] for r in rs], 100)} | "
                     f"{mean_sd([r['train_cpu_s'] for r in rs], 1, 0)} | {search} |")
    pairs = [(by[(s, 'searched')], by[(s, 'equal')]) for s in seeds if (s, "searched") in by and (s, "equal") in by]
    if pairs:
        diff = [a["exit_test_accuracy"][-1] - b["exit_test_accuracy"][-1] for a, b in pairs]
        lines += ["", f"Searched minus equal, last exit, paired by seed: {mean_sd(diff, 100)} points ({len(pairs)} seeds)."]
    lines += ["", "## Cuts and candidate scores per seed", "",
              "| seed | equal cuts | searched cuts | proxy per candidate (last-exit val CE; chosen in bold) |", "|---|---|---|---|"]
    for s in seeds:
        if (s, "searched") not in by:
            continue
        search = by[(s, "searched")]["search"]
        chosen = {tuple(c) for c in search["cuts"]}
        scores = ", ".join((f"**{_cuts([c])} {v:.3f}**" if tuple(c) in chosen else f"{_cuts([c])} {v:.3f}")
                           for c, v in zip(search["candidates"], search["scores"]))
        equal = _cuts(by[(s, "equal")]["cuts"]) if (s, "equal") in by else "–"
        lines.append(f"| {s} | {equal} | {_cuts(search['cuts'])} | {scores} |")
    lines += ["", "Every number: [cells.json](cells.json).", ""]
    return lines
