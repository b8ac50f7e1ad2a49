"""ZTW and L2W against joint: the accuracy-vs-FLOPs curve of the exits and the area under it (issue 26).

Command (the committed setting): ``python -m benchmarks exit_curves`` (seeds 0-2; 4 000 training images, 5 epochs: the 20 CPU-minute budget of the shared 2-core machine). A cell is one method and
seed on Fashion-MNIST with the CNN of ``rules-cnn-fashion`` at K = 4 (32-64-64-64, a conv head per stage;
Adam lr 1e-3, batch 64, ``--epochs`` on the first ``--train-size`` training images):

- ``joint``: every exit's cross-entropy summed, end to end; exits decided by max-prob;
- ``joint:weighting=l2w``: the same with Learning to Weight's meta-learned per-sample exit weights; max-prob;
- ``ztw``: Zero Time Waste's recipe: the backbone trained end to end (``e2e``, last head only) for ``--epochs``,
  loaded into a fresh net, then its internal classifiers with cascade connections trained on the frozen
  backbone (rule ``ztw``) for ``--epochs``; the geometric ensemble (``ztw-ensemble``) fitted on the training
  split's exit logits. Its curve is drawn with the ensemble, and again with max-prob on the cascade heads
  alone (no ensemble), to tell the two parts apart.

Each curve: one max-prob threshold shared by the early exits, swept over ``--points`` quantiles of their
pooled sureness and ``inf`` (``locallearn.exits.curve``), on the 10 000-image test split: test accuracy
against mean FLOPs per image (``FlopCounterMode``: convolutions and matrix products; every head a sample
ran counted). The area is normalised over the FLOPs range every curve of the report covers (the mean
accuracy over that range of costs); the report gives its mean ± sd over seeds and a paired t-test against
joint by seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import torch

from locallearn import data as datasets
from locallearn.provenance import load_average
from locallearn.compare import parse_named
from locallearn.data import Dataset
from locallearn.exits import ExitCurve, collect_exit_logits, common_range, curve_area, plot_accuracy_cost, stage_costs, threshold_curve
from locallearn.exits.policies import EXIT_POLICIES
from locallearn.exits.policies.ensemble import GeometricEnsemblePolicy
from locallearn.experiment import RunSpec, build_net, make_trainer, training_subset
from locallearn.report.stats import format_mean_sd, mean_sd, paired_test
from locallearn.trainer import Trainer, seed_everything

TITLE = "Exit curves: ZTW and L2W against joint (accuracy vs FLOPs)"
DESCRIPTION = ("Fashion-MNIST CNN 32-64-64-64 (K = 4): joint, joint with L2W weights and ZTW (cascade heads on a frozen e2e "
               "backbone, geometric ensemble); the test accuracy-vs-FLOPs curve over shared max-prob thresholds and its "
               "area over the common FLOPs range")
METHODS = ("joint", "joint:weighting=l2w", "ztw")
REFERENCE = "joint max-prob"
ANCHORS = {
    "ZTW (Wołczyk et al. 2021)": "cascade connections + geometric ensemble beat SDN-style internal classifiers on the "
                                 "accuracy-vs-FLOPs curve on CIFAR-10/100 and Tiny ImageNet (ResNet-56, MobileNet, WideResNet, VGG)",
    "L2W (Han et al. 2022)": "meta-learned sample weights raise the accuracy of a multi-exit net at equal budget over uniform "
                             "joint training on CIFAR and ImageNet (MSDNet, RANet)",
}


def spec(cell: dict[str, Any], rule: str, rule_kw: dict[str, Any]) -> RunSpec:
    return RunSpec(data="fashion-mnist", model="cnn", channels=tuple(cell["channels"]), rule=rule, rule_kw=rule_kw,
                   epochs=cell["epochs"], batch_size=cell["batch_size"], lr=cell["lr"], seed=cell["seed"], eval_every=0,
                   progress=False)


def train(cell: dict[str, Any], ds: Dataset):
    """The trained net of one cell and its policies: ``{label: fitted policy}``."""
    if cell["method"] != "ztw":
        rule, rule_kw = parse_named(cell["method"], what="rule")
        trainer = make_trainer(spec(cell, rule, rule_kw), ds)
        trainer.fit()
        return trainer.net, {"max-prob": "max-prob"}
    backbone = make_trainer(spec(cell, "e2e", {"probe_heads": False}), ds)
    backbone.fit()
    ztw = spec(cell, "ztw", {})
    seed_everything(cell["seed"])
    net = build_net(ztw, ds)
    net.load_state_dict(backbone.net.state_dict())
    Trainer(net, data=ds, rule="ztw", schedule="simultaneous", config=ztw.train_config()).fit()
    train_logits = collect_exit_logits(net, ds.x_train, ds.y_train, split="train")
    ensemble = GeometricEnsemblePolicy(epochs=cell["ensemble_epochs"], seed=cell["seed"]).fit(train_logits)
    return net, {"ztw-ensemble": ensemble, "max-prob": "max-prob"}


def measure(cell: dict[str, Any], ds: Dataset, full: Dataset) -> dict[str, Any]:
    load_before, cpu_start = load_average(), time.process_time()
    net, policies = train(cell, ds)
    train_cpu = time.process_time() - cpu_start
    net.eval()
    test = collect_exit_logits(net, full.x_test, full.y_test, split="test")
    costs = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], full.input_shape)
    curves = {}
    for label, policy in policies.items():
        curve = threshold_curve(test, policy, costs, n_points=cell["points"])
        outputs = EXIT_POLICIES.create(policy).outputs(test.logits)
        curves[label] = {"flops": list(curve.flops), "accuracy": list(curve.accuracy), "thresholds": list(curve.thresholds),
                         "exit_accuracy": (outputs.argmax(-1) == test.labels).double().mean(1).tolist()}
    return {"method": cell["method"], "seed": cell["seed"],
            "exit_test_accuracy": (test.logits.argmax(-1) == test.labels).double().mean(1).tolist(),
            "block_flops": list(costs.blocks), "head_flops": list(costs.heads), "full_flops": costs.full, "curves": curves,
            "train_cpu_s": train_cpu, "cpu_s": time.process_time() - cpu_start, "load_1min": [load_before[0], load_average()[0]]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5, help="epochs of each training (ztw: of the backbone and of its heads)")
    p.add_argument("--train-size", type=int, default=4000, help="the first N training images")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 64, 64])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--points", type=int, default=101, help="shared thresholds per curve (quantiles), inf added")
    p.add_argument("--ensemble-epochs", type=int, default=501, help="epochs of ztw-ensemble's fit (the authors' 501)")


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"method": m, "seed": s, "epochs": args.epochs, "train_size": args.train_size, "channels": args.channels,
             "lr": args.lr, "batch_size": args.batch_size, "points": args.points, "ensemble_epochs": args.ensemble_epochs}
            for s in args.seeds for m in args.methods]


def run(todo: list[dict[str, Any]], args: argparse.Namespace, add: Callable[[dict, dict], None]) -> None:
    full = datasets.load("fashion-mnist")
    for cell in todo:
        # the final evaluation of each fit sees 1 000 validation / test images; the curves, every test image
        ds = training_subset(full, cell["train_size"], eval_size=1000)
        record = measure(cell, ds, full)
        print(f"{cell['method']} seed {cell['seed']}: exits {[round(100 * a, 1) for a in record['exit_test_accuracy']]} %, "
              f"{record['cpu_s']:.0f} CPU s", flush=True)
        add(cell, record)


def _curves(records: list[dict[str, Any]]) -> dict[tuple[str, int], ExitCurve]:
    """``(label, seed) -> curve``, label = method and policy."""
    return {(f"{r['method']} {policy}", r["seed"]): ExitCurve(tuple(c["flops"]), tuple(c["accuracy"]), tuple(c["thresholds"]))
            for r in records for policy, c in r["curves"].items()}


def areas(records: list[dict[str, Any]]) -> tuple[tuple[float, float], dict[str, dict[int, float]]]:
    """The common FLOPs range and every curve's normalised area: ``{label: {seed: area}}``."""
    curves = _curves(records)
    low, high = common_range(list(curves.values()))
    out: dict[str, dict[int, float]] = {}
    for (label, seed), c in curves.items():
        out.setdefault(label, {})[seed] = curve_area(c.flops, c.accuracy, low, high)
    return (low, high), out


def report(records: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> list[str]:
    cell = records[0]["cell"]
    (low, high), area = areas(records)
    full = records[0]["full_flops"]
    seeds = sorted({r["seed"] for r in records})
    pct = lambda values: format_mean_sd(mean_sd(values), scale=100)  # noqa: E731
    lines = [
        f"Setting: CNN {cell['channels']} (K = {len(cell['channels'])}, a conv head per stage), {cell['epochs']} epochs on the "
        f"first {cell['train_size']} Fashion-MNIST training images, batch {cell['batch_size']}, Adam lr {cell['lr']}, seeds "
        f"{seeds}; ztw: {cell['epochs']} epoch(s) of e2e (last head only), then {cell['epochs']} of its heads on the frozen "
        f"backbone, ztw-ensemble fitted {cell['ensemble_epochs']} epochs on the training split's exit logits. Curves on the "
        f"10 000-image test split, {cell['points']} shared max-prob thresholds (quantiles of the pooled early-exit sureness) "
        "and inf. CPU time per cell (training and measuring, one thread) and 1-minute load before / after: "
        + ", ".join(f"{r['method']} s{r['seed']} {r['cpu_s']:.0f} s ({r['load_1min'][0]:.1f} / {r['load_1min'][1]:.1f})" for r in records)
        + ".", "",
        f"Area: the mean test accuracy over the FLOPs range every curve covers, {low / 1e6:.3f} to {high / 1e6:.3f} MFLOPs per "
        f"image ({low / full:.3f} to {high / full:.3f} of joint's full network, {full / 1e6:.3f} MFLOPs: every block and the "
        "last head), i.e. from every sample leaving at the first exit to none leaving early (every head run), the curve "
        "linear between its points. Paired: the difference to joint by seed, its 95 % t interval and the two-sided p "
        "of the paired t-test.", "",
        "| method | exit policy | test acc % per exit (first → last; ztw-ensemble: the ensemble's) | area (mean acc % over the range) | − joint (pt, paired) | 95 % CI | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, by_seed in area.items():
        method, policy = label.rsplit(" ", 1)
        rs = [r for r in records if r["method"] == method]
        exits = [r["curves"][policy]["exit_accuracy"] for r in rs]
        per_exit = " / ".join(pct([e[k] for e in exits]) for k in range(len(exits[0])))
        test = paired_test(by_seed, area.get(REFERENCE, {})) if label != REFERENCE else None
        diff = ("–", "–", "–") if test is None else (f"{100 * test['mean_difference']:+.2f}",
                                                    f"[{100 * test['ci95'][0]:+.2f}, {100 * test['ci95'][1]:+.2f}]", f"{test['p']:.3f}")
        lines.append(f"| {method} | {policy} | {per_exit} | {pct(list(by_seed.values()))} | {' | '.join(diff)} |")
    first = {label: c for (label, seed), c in _curves(records).items() if seed == seeds[0]}
    plot_accuracy_cost(out / "curves.png", {label: ([f / full for f in c.flops], c.accuracy) for label, c in first.items()},
                       title=f"Fashion-MNIST CNN K = 4, test split, seed {seeds[0]}")
    lines += ["", "## Anchors", ""] + [f"- **{k}**: {v}" for k, v in ANCHORS.items()]
    lines += ["", f"Figure: [curves.png](curves.png) (every curve of seed {seeds[0]}, cost relative to joint's full network). "
              "Every number: [cells.json](cells.json).", ""]
    return lines
