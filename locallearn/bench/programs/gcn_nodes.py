"""A GCN (Kipf & Welling 2017) with a node-level exit after every layer, trained by e2e and local (and joint):
every exit's test-node accuracy, 3 seeds, on the stochastic block model the package generates and on Zachary's
karate club (shipped by networkx).

Command (the committed setting): ``python -m benchmarks gcn_nodes``. A cell is one (graph, rule, seed); the
graph itself is fixed (its own seed 0), the seed draws the weights and the dropout. Full-graph Adam steps
(lr 0.01, weight decay 5e-4, dropout 0.5), one torch thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import graphs, models
from locallearn.bench.programs.early_exit import mean_sd

TITLE = "GCN node classification (CPU): an exit after every layer, e2e vs local"
DESCRIPTION = ("A 3-layer GCN with a linear read-out per layer on a generated stochastic block model and on the "
               "karate club: per-layer exit accuracy for e2e, joint and local, 3 seeds")
GRAPH_SETTINGS = {"sbm": {"widths": [32, 32, 32]}, "karate": {"widths": [16, 16, 16]}}


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    torch.manual_seed(cell["seed"])
    family = models.create("gcn", widths=tuple(cell["widths"]), dropout=cell["dropout"], graph=cell["graph"])
    graph = family.load_graph()
    net = family.build(tuple(graph.x.shape[1:]), graph.num_classes)
    cpu = time.thread_time()
    history = graphs.train_gcn(net, graph, cell["rule"], epochs=cell["epochs"], lr=cell["lr"], weight_decay=cell["weight_decay"])
    return {"graph": cell["graph"], "rule": cell["rule"], "seed": cell["seed"], "train_cpu_s": time.thread_time() - cpu,
            "final_losses": history[-1], "nodes": len(graph.x), "classes": graph.num_classes,
            "train_nodes": int(graph.train.sum()), "test_nodes": int(graph.test.sum()),
            "exit_test_accuracy": graphs.exit_accuracy(net, graph, "test"),
            "exit_val_accuracy": graphs.exit_accuracy(net, graph, "val")}


def report(records: list[dict], args: argparse.Namespace, out: Path) -> list[str]:
    cell = records[0]["cell"]
    lines = [f"Full-graph training, {cell['epochs']} Adam steps (lr {cell['lr']}, weight decay {cell['weight_decay']}, "
             f"dropout {cell['dropout']}), seeds {sorted({r['seed'] for r in records})}; test-node accuracy (%) of every "
             "exit, mean ± sd over seeds. The graphs: `sbm` (the package's contextual stochastic block model, default "
             "options: 600 nodes, 4 blocks, p_in 0.03, p_out 0.006, 16 features of signal 0.5; 20 training nodes per "
             "class, 100 validation) and `karate` (Zachary's karate club from networkx, 34 nodes, 2 clubs, one-hot "
             "features, the two leaders as the only training nodes).", ""]
    for graph in dict.fromkeys(r["graph"] for r in records):
        rs = [r for r in records if r["graph"] == graph]
        k = len(rs[0]["exit_test_accuracy"])
        lines += [f"## {graph} ({rs[0]['nodes']} nodes, {rs[0]['train_nodes']} training, {rs[0]['test_nodes']} test)", "",
                  "| rule | " + " | ".join(f"exit {i + 1}" for i in range(k)) + " | training CPU s |", "|---|" + "---|" * (k + 1)]
        for rule in dict.fromkeys(r["rule"] for r in rs):
            sub = [r for r in rs if r["rule"] == rule]
            lines.append(f"| {rule} | " + " | ".join(mean_sd([r["exit_test_accuracy"][i] for r in sub], 100) for i in range(k))
                         + f" | {mean_sd([r['train_cpu_s'] for r in sub], 1, 1)} |")
        lines.append("")
    lines += ["Every number: [cells.json](cells.json).", ""]
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graphs", nargs="+", default=list(GRAPH_SETTINGS), choices=list(GRAPH_SETTINGS))
    p.add_argument("--rules", nargs="+", default=["e2e", "joint", "local"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--dropout", type=float, default=0.5)


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"graph": g, "rule": rule, "seed": seed, "widths": GRAPH_SETTINGS[g]["widths"], "epochs": args.epochs,
             "lr": args.lr, "weight_decay": args.weight_decay, "dropout": args.dropout}
            for g in args.graphs for rule in args.rules for seed in args.seeds]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    for cell in todo:
        record = run_cell(cell)
        print(f"{cell['graph']} {cell['rule']} seed {cell['seed']}: {[round(a, 3) for a in record['exit_test_accuracy']]}", flush=True)
        add(cell, record)
