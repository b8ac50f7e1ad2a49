"""The rest of the survey on Fashion-MNIST (issue 15): backbone-then-heads with neural and scikit-learn heads,
exits costed in measured time (predicted vs measured speed-up), a three-tier deployment, freezeout vs joint.

Parts (``--part``), each writing ``benchmarks/results/survey_exits/<part>.json`` and ``.md``:

* ``heads``: per model and seed, train ``joint`` and ``local`` (every exit) and an ``e2e`` backbone through its
  last exit only; freeze the backbone and fit the auxiliary exits as linear heads, MLP heads and scikit-learn
  classifiers (logistic regression, calibrated linear SVM, random forest). Per-exit test accuracy; max-prob
  thresholds calibrated on validation for <= ``--max-drop`` pt with a measured latency table (batch 256):
  test drop, predicted and measured speed-up of the real runner at batch 256.
* ``latency``: the ``joint`` nets: thresholds calibrated with the FLOPs table and with the latency table
  (batch 256); predicted vs measured speed-up at batch 256 (check: measured >= 0.8 x predicted).
* ``tiers``: the seed-0 ``joint`` nets on three tiers (device, edge, cloud; stated speeds and links); eq. 4 gain of
  every exit, eq. 12 latency, bytes per sample measured by the runner vs the formula, a latency-budget calibration.
* ``freezeout``: ``joint`` with the ``simultaneous`` schedule vs ``joint`` with ``freezeout`` (cosine, linear and
  cubic spacing), same epochs, seeds; trainers advance one epoch in turns; 1-thread CPU time and accuracy.

Trained networks are kept in ``--work`` and reused. Command (what produced the committed results; see each results file's own command line):
    python benchmarks/survey_exits.py --part latency tiers heads
    python benchmarks/survey_exits.py --part freezeout
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from locallearn import data as datasets
from locallearn import io
from locallearn.provenance import git_revision
from locallearn.data import Dataset
from locallearn.exits import (
    EarlyExitRunner, Link, Tier, TierPlan, collect_exit_logits, compare_speedup, evaluate, exit_gains, expected_cost,
    exit_fractions, feature_bytes, fit_heads, fit_sklearn_heads, for_budget, for_latency_budget, for_target_accuracy,
    freeze_backbone, make_estimator, stage_costs, stage_latency,
)
from locallearn.experiment import RunSpec, make_trainer
from locallearn.heads import MLPHead

OUT = Path(__file__).parent / "results" / "survey_exits"
MODELS = {"mlp": {"model": "mlp", "widths": (1024, 1024, 1024)}, "cnn": {"model": "cnn", "channels": (16, 32, 32)}}
SKLEARN = ("logreg", "linear-svc", "random-forest")
TIERS = (Tier("device", speed=1e9), Tier("edge", speed=1e10), Tier("cloud", speed=1e11))  # FLOP/s
LINKS = (Link(bandwidth=1e6, latency=0.005), Link(bandwidth=1e7, latency=0.02))  # bytes/s, s per transfer


def spec(model: str, rule: str, seed: int, args: argparse.Namespace, **extra: Any) -> RunSpec:
    fields = {"data": "fashion-mnist", **MODELS[model], "rule": rule, "epochs": args.epochs, "batch_size": 128, "lr": args.lr,
              "seed": seed, "eval_every": 0, "progress": False, **extra}
    return RunSpec(**fields)


def load_data(args: argparse.Namespace) -> Dataset:
    full = datasets.load("fashion-mnist")
    n = args.train_size
    return Dataset(full.name, full.x_train[:n], full.y_train[:n], full.x_val, full.y_val, full.x_test, full.y_test, full.num_classes)


def trained(model: str, rule: str, seed: int, ds: Dataset, args: argparse.Namespace, **rule_kw: Any):
    """The trained net of (model, rule, seed), from ``--work`` when there."""
    trainer = make_trainer(spec(model, rule, seed, args, rule_kw=rule_kw), ds)
    options = "".join(f"_{k}{v}" for k, v in sorted(rule_kw.items()))
    path = Path(args.work) / f"{model}_{rule}{options}_seed{seed}.pt"
    if path.exists():
        trainer.net.load_state_dict(io.load_checkpoint(path)["net"])
    else:
        start = time.process_time()
        trainer.fit()
        print(f"trained {model} {rule} seed {seed}: {time.process_time() - start:.0f} s CPU", flush=True)
        trainer.save_checkpoint(path)
    return trainer.net.eval()


def exits_record(net, ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    """Per-exit test accuracy; max-prob calibrated with the batch-256 latency table; predicted vs measured speed-up."""
    val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
    test = collect_exit_logits(net, ds.x_test, ds.y_test, split="test")
    table = stage_latency(net, ds.x_val[:2048], batch_size=256, rounds=args.rounds)
    th = for_target_accuracy(val, "max-prob", table, max_drop=args.max_drop / 100)
    result = evaluate(test, th, table)
    timing = compare_speedup(net, th, ds.x_test[: args.timed_samples], table, batch_size=256, rounds=args.rounds)
    return {
        "exit_test_accuracy": (test.logits.argmax(-1) == test.labels).double().mean(1).tolist(),
        "latency_table_s": {"blocks": list(table.blocks), "heads": list(table.heads)},
        "test_accuracy": result.accuracy, "test_drop_pt": 100 * (result.last_exit_accuracy - result.accuracy),
        "exit_fractions": result.exit_fractions.tolist(), "time_saved_fraction": 1 - result.relative_cost, **timing,
    }


def part_heads(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    records = []
    for model in args.models:
        for seed in args.seeds:
            for rule in ("joint", "local"):
                records.append({"model": model, "seed": seed, "method": rule, **exits_record(trained(model, rule, seed, ds, args), ds, args)})
            backbone = trained(model, "e2e", seed, ds, args, probe_heads=False)
            freeze_backbone(backbone)
            variants = {"bth linear": None, "bth mlp": "mlp", **{f"bth {name}": name for name in SKLEARN}}
            for method, kind in variants.items():
                net = copy.deepcopy(backbone)
                start = time.process_time()
                if kind in (None, "mlp"):
                    if kind == "mlp":
                        shapes = [tuple(h.shape[1:]) for h in net(ds.x_val[:2], return_features=True)[1]]
                        for k in range(len(net.stages) - 1):
                            net.stages[k].head = MLPHead(shapes[k], ds.num_classes, hidden=(128,))
                    fit_heads(net, ds.x_train, ds.y_train, epochs=args.head_epochs, lr=args.lr, seed=seed)
                else:
                    estimators = {k: make_estimator(kind, seed=seed) for k in range(len(net.stages) - 1)}
                    fit_sklearn_heads(net, ds.x_train, ds.y_train, estimators, pool=2, max_samples=args.sklearn_samples, seed=seed)
                fit_s = time.process_time() - start
                records.append({"model": model, "seed": seed, "method": method, "head_fit_cpu_s": fit_s, **exits_record(net.eval(), ds, args)})
                print(f"  {model} seed {seed} {method}: {records[-1]['exit_test_accuracy']}", flush=True)
    return records


def part_softcost(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``joint`` beside ``joint-cost`` (the soft cost of eq. 13-14 as a penalty) at a few penalty weights."""
    records = []
    for model in args.models:
        for seed in args.seeds:
            for penalty in (0.0, *args.penalties):
                net = trained(model, "joint", seed, ds, args) if penalty == 0 else trained(model, "joint-cost", seed, ds, args, penalty=penalty)
                method = "joint" if penalty == 0 else f"joint-cost, penalty {penalty:g}"
                records.append({"model": model, "seed": seed, "method": method, **exits_record(net, ds, args)})
                print(f"  {model} seed {seed} {method}: {records[-1]['exit_test_accuracy']}", flush=True)
    return records


def part_latency(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    records = []
    for model in args.models:
        for seed in args.seeds:
            net = trained(model, "joint", seed, ds, args)
            val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
            flops = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], ds.input_shape)
            latency = stage_latency(net, ds.x_val[:2048], batch_size=256, rounds=args.rounds)
            for name, table in (("flops", flops), ("latency", latency)):
                points = {f"<= {args.max_drop} pt on val": for_target_accuracy(val, "max-prob", table, max_drop=args.max_drop / 100),
                          "budget 0.6 (MSDNet proportions)": for_budget(val, "max-prob", table, budget=0.6)}
                for point, th in points.items():
                    timing = compare_speedup(net, th, ds.x_test[: args.timed_samples], table, batch_size=256, rounds=args.rounds)
                    records.append({"model": model, "seed": seed, "cost_table": name, "operating_point": point,
                                    "table": {"blocks": list(table.blocks), "heads": list(table.heads)}, **timing})
                    print(f"  {model} seed {seed} {name} {point}: predicted {timing['predicted_speedup']:.2f}x measured {timing['measured_speedup']:.2f}x", flush=True)
    return records


def part_tiers(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    records = []
    for model in args.models:
        net = trained(model, "joint", args.seeds[0], ds, args)
        val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
        test = collect_exit_logits(net, ds.x_test, ds.y_test, split="test")
        flops = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], ds.input_shape)
        input_bytes, sizes = feature_bytes(net, ds.input_shape)
        for assignment in ((0, 1, 2), (0, 0, 2), (1, 1, 2), (2, 2, 2)):
            plan = TierPlan(tiers=TIERS, links=LINKS, assignment=assignment)
            table = plan.cost_table(flops, input_bytes=input_bytes, feature_bytes=sizes)
            th = for_target_accuracy(val, "max-prob", table, max_drop=args.max_drop / 100)
            out = EarlyExitRunner(net, th, tiers=plan).run(ds.x_test)
            formula = plan.bytes_per_exit(input_bytes=input_bytes, feature_bytes=sizes)[out.exit]
            f = exit_fractions(out.exit, len(sizes))
            half_way = 0.5 * (float(table.cumulative[0]) + table.full)  # between "all leave at exit 0" and no exit
            budget = for_latency_budget(val, "max-prob", table, budget=half_way)
            on_budget = evaluate(test, budget, table)
            records.append({
                "model": model, "assignment": [TIERS[a].name for a in assignment], "input_bytes": input_bytes, "feature_bytes": sizes,
                "table_s": {"blocks": list(table.blocks), "heads": list(table.heads)}, "full_s": table.full,
                "thresholds": list(th.values), "test_accuracy": evaluate(test, th, table).accuracy,
                "last_exit_accuracy": float((test.logits[-1].argmax(-1) == test.labels).double().mean()),
                "exit_fractions": f.tolist(), "eq12_expected_s": expected_cost(f, table),
                "eq4_gain_s": exit_gains(out.exit, table.blocks, table.heads),
                "bytes_measured_mean": float(out.bytes_sent.mean()), "bytes_formula_mean": float(formula.mean()),
                "bytes_max_abs_diff": float((out.bytes_sent - formula).abs().max()),
                "bytes_no_exit": float(plan.bytes_per_exit(input_bytes=input_bytes, feature_bytes=sizes)[-1]),
                "budget_half_way": {"budget_s": half_way, "test_expected_s": on_budget.mean_cost, "test_accuracy": on_budget.accuracy,
                                     "exit_fractions": on_budget.exit_fractions.tolist()},
            })
    return records


FREEZEOUT = {
    "joint (simultaneous)": ("simultaneous", {}),
    "freezeout linear, t0 0.5, unscaled": ("freezeout", {"spacing": "linear", "t0": 0.5, "scale_lr": False}),
    "freezeout cubic, t0 0.8 (pre-cubed), scaled": ("freezeout", {"spacing": "cubic", "t0": 0.8, "scale_lr": True}),
}


def part_freezeout(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every variant from the same initial weights; one epoch each in turn; CPU time of the training epochs only."""
    records = []
    for model in args.models:
        for seed in args.freezeout_seeds:
            trainers, cpu = {}, {}
            for variant, (schedule, kw) in FREEZEOUT.items():
                trainer = make_trainer(spec(model, "joint", seed, args, schedule=schedule, schedule_kw=kw, epochs=args.freezeout_epochs), ds)
                cpu[variant] = 0.0

                def timed(state, run=trainer.schedule.train_epoch, variant=variant):
                    start = time.process_time()
                    trained_stages = run(state)
                    cpu[variant] += time.process_time() - start
                    return trained_stages

                trainer.schedule.train_epoch = timed
                trainers[variant] = trainer
            for _ in range(args.freezeout_epochs):
                for trainer in trainers.values():
                    trainer.fit(epochs=1)
            for variant, trainer in trainers.items():
                records.append({"model": model, "seed": seed, "variant": variant, "cpu_s": cpu[variant],
                                "test_accuracy": trainer.result.final("test"), "val_accuracy": trainer.result.final("val")})
                print(f"  {model} seed {seed} {variant}: {cpu[variant]:.1f} s CPU, test {records[-1]['test_accuracy']}", flush=True)
    return records


def part_cosine(ds: Dataset, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``joint`` with a cosine learning-rate decay over the same epochs: the annealing of freezeout without the
    freezing, to tell the two apart (accuracy; its own CPU time, not interleaved with the freezeout part)."""
    records = []
    for model in args.models:
        for seed in args.freezeout_seeds:
            trainer = make_trainer(spec(model, "joint", seed, args, epochs=args.freezeout_epochs, lr_schedule="cosine"), ds)
            start = time.process_time()
            trainer.fit()
            records.append({"model": model, "seed": seed, "variant": "joint (simultaneous), cosine LR", "cpu_s": time.process_time() - start,
                            "test_accuracy": trainer.result.final("test"), "val_accuracy": trainer.result.final("val")})
            print(f"  {model} seed {seed} cosine: test {records[-1]['test_accuracy']}", flush=True)
    return records


def mean_sd(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    values = [scale * v for v in values]
    if len(values) == 1:  # one seed: no spread to show
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def header(title: str, meta: dict[str, Any], *, epochs: int | None = None, seeds: list[int] | None = None) -> list[str]:
    m, a = meta["machine"], meta["args"]
    epochs, seeds = epochs or a["epochs"], seeds or a["seeds"]
    return [f"# {title}", "", f"Command: `{meta['command']}`  ",
            f"Git: `{meta['git']['commit']}` (package modified: {meta['git'].get('package_modified')}); {meta['date']}; "
            f"{m['processor']}, {m['cpu_count']} cores shared with other jobs, torch {m['torch']} ({m['torch_threads']} thread); "
            f"load average before / after: {meta['load'][0]} / {meta['load'][1]}.  ",
            f"Setting: Fashion-MNIST, first {a['train_size']} training images, {epochs} epochs "
            f"(kept small: a shared 2-core CPU), batch 128, Adam lr {meta['args']['lr']}; MLP 3x1024 (linear heads), "
            f"CNN 16-32-32 (conv heads); thresholds on the 5 000-image validation split, numbers on the 10 000-image test split "
            f"(speed-ups on its first {a['timed_samples']}). " + (f"Mean ± sd over seeds {seeds}." if len(seeds) > 1 else f"One seed ({seeds[0]}).") + (
                " One torch thread, one BLAS thread for scikit-learn." ), ""]


def markdown(part: str, records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    groups: dict[tuple, list] = {}
    if part in ("heads", "softcost"):
        title = "Backbone first, then heads, beside joint and local" if part == "heads" else "joint-cost: the soft cost (eq. 13-14) as a training penalty"
        what = ("`bth X`: an `e2e` backbone trained through its last exit only, frozen, then auxiliary exits fitted on its "
                f"eval-mode features ({meta['args']['head_epochs']} epochs for neural heads; scikit-learn classifiers on "
                f"{meta['args']['sklearn_samples']} training images, conv maps average-pooled to 2x2).") if part == "heads" else (
                "`joint-cost`: the `joint` loss plus penalty x the soft expected relative FLOPs of eq. 13-14 (smooth max-prob "
                "exit, threshold 0.9, temperature 0.05), trained like `joint`.")
        lines = header(title, meta) + [
            what + " Early exit: max-prob, "
            f"calibrated on validation for <= {meta['args']['max_drop']} pt with the measured latency table (batch 256).", "",
            "| model | method | exit accuracy % (test) | test drop pt | time saved (table) % | predicted speed-up | measured speed-up (batch 256) | head fit CPU s |",
            "|---|---|---|---|---|---|---|---|"]
        for r in records:
            groups.setdefault((r["model"], r["method"]), []).append(r)
        for (model, method), rs in groups.items():
            acc = " / ".join(mean_sd([r["exit_test_accuracy"][k] for r in rs], 100, 1) for k in range(len(rs[0]["exit_test_accuracy"])))
            fit = mean_sd([r["head_fit_cpu_s"] for r in rs], 1, 1) if "head_fit_cpu_s" in rs[0] else "-"
            lines.append(f"| {model} | {method} | {acc} | {mean_sd([r['test_drop_pt'] for r in rs])} | {mean_sd([r['time_saved_fraction'] for r in rs], 100, 1)} | "
                         f"{mean_sd([r['predicted_speedup'] for r in rs])}x | {mean_sd([r['measured_speedup'] for r in rs])}x | {fit} |")
    elif part == "latency":
        lines = header("Exits costed in measured time: predicted vs measured speed-up at batch 256", meta) + [
            "`joint` nets; max-prob thresholds calibrated on validation for <= "
            f"{meta['args']['max_drop']} pt, or for a relative budget of 0.6 with MSDNet's exit proportions, with the FLOPs table or the measured latency table (batch 256, fastest of "
            f"{meta['args']['rounds']} passes). Predicted = C_full / mean C_exit from that table and the exits the runner took; "
            "measured = wall time of the full network / the early-exit runner on the same batches (fastest of interleaved passes). "
            "Check: measured >= 0.8 x predicted.", "",
            "| model | cost table | thresholds | predicted speed-up | measured speed-up | measured / predicted | exits (fractions, seed 0) | check >= 0.8 |", "|---|---|---|---|---|---|---|---|"]
        for r in records:
            groups.setdefault((r["model"], r["cost_table"], r["operating_point"]), []).append(r)
        for (model, name, point), rs in groups.items():
            ok = all(r["measured_over_predicted"] >= 0.8 for r in rs)
            lines.append(f"| {model} | {name} | {point} | {mean_sd([r['predicted_speedup'] for r in rs])}x | {mean_sd([r['measured_speedup'] for r in rs])}x | "
                         f"{mean_sd([r['measured_over_predicted'] for r in rs])} | {[round(f, 2) for f in rs[0]['exit_fractions']]} | {'met' if ok else 'NOT met'} ({len(rs)} seeds) |")
    elif part == "tiers":
        lines = header("Three tiers: device, edge, cloud", meta) + [
            "Tiers: " + ", ".join(f"{t.name} {t.speed / 1e9:g} GFLOP/s" for t in TIERS) + "; links: device-edge "
            f"{LINKS[0].bandwidth / 1e6:g} MB/s + {LINKS[0].latency * 1e3:g} ms, edge-cloud {LINKS[1].bandwidth / 1e6:g} MB/s + "
            f"{LINKS[1].latency * 1e3:g} ms per transfer; float32 features; the input starts on the device. Costs: counted FLOPs / tier "
            "speed + bytes / bandwidth + latency per link crossed (per sample, batch-1 serving). `joint` net, seed "
            f"{meta['args']['seeds'][0]}; max-prob calibrated on validation with these costs for <= {meta['args']['max_drop']} pt. "
            "eq. 4 gain per exit (f_k S_k - r_k h_k, ms per sample; > 0: the exit pays off). Bytes: mean per test sample "
            "counted by the runner (the tensors it hands across tier boundaries) vs the formula S_exit.", "",
            "Break-even: eq. 4 says exit k pays off when the share of the samples reaching it that leave there, "
            "f_k / r_k, exceeds h_k / S_k (its head's cost over the cost a leaving sample skips).", "",
            "| model | stages on | full network ms | eq. 12 ms (test) | exit fractions | eq. 4 gain ms (exit 0, 1) | break-even f_k/r_k (exit 0, 1) | bytes measured | bytes formula | max diff | bytes without exits | test acc % (last exit) | budget half-way from C_0 to full: budget ms; test ms, acc % |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in records:
            gains = ", ".join(f"{1e3 * g:+.3f}" for g in r["eq4_gain_s"])
            blocks, heads = r["table_s"]["blocks"], r["table_s"]["heads"]
            even = ", ".join(f"{heads[k] / (sum(blocks[k + 1:]) + heads[-1]):.2g}" for k in range(len(blocks) - 1))
            b = r["budget_half_way"]
            lines.append(f"| {r['model']} | {'/'.join(r['assignment'])} | {1e3 * r['full_s']:.2f} | {1e3 * r['eq12_expected_s']:.2f} | "
                         f"{[round(f, 2) for f in r['exit_fractions']]} | {gains} | {even} | {r['bytes_measured_mean']:.1f} | {r['bytes_formula_mean']:.1f} | "
                         f"{r['bytes_max_abs_diff']:g} | {r['bytes_no_exit']:.0f} | {100 * r['test_accuracy']:.2f} ({100 * r['last_exit_accuracy']:.2f}) | "
                         f"{1e3 * b['budget_s']:.2f}; {1e3 * b['test_expected_s']:.2f}, {100 * b['test_accuracy']:.2f} |")
        lines += ["", "Feature bytes per sample (input, h_0, h_1, h_2): " + "; ".join(
            f"{r['model']}: {r['input_bytes']}, {', '.join(str(s) for s in r['feature_bytes'])}" for r in records if r["assignment"][0] == "device" and r["assignment"][1] == "edge")]
    elif part == "cosine":
        lines = header("joint with a cosine learning-rate decay (the annealing of freezeout, no freezing)", meta,
                       epochs=meta["args"]["freezeout_epochs"], seeds=meta["args"]["freezeout_seeds"]) + [
            "Trainer `lr_schedule=\"cosine\"` (per epoch) over the same epochs as the freezeout part; accuracy beside freezeout's. "
            "Its CPU time was measured alone, not in turns with the freezeout runs.", "",
            "| model, schedule | test acc % exit 0 / 1 / 2 | training + evaluation CPU s |", "|---|---|---|"]
        for r in records:
            groups.setdefault((r["model"], r["variant"]), []).append(r)
        for (model, variant), rs in groups.items():
            acc = " / ".join(mean_sd([r["test_accuracy"][k] for r in rs], 100, 2) for k in range(len(rs[0]["test_accuracy"])))
            lines.append(f"| {model} {variant} | {acc} | {mean_sd([r['cpu_s'] for r in rs], 1, 1)} |")
    else:
        lines = header("Freezeout vs joint, same epochs", meta, epochs=meta["args"]["freezeout_epochs"], seeds=meta["args"]["freezeout_seeds"]) + [
            "Both train every exit with the `joint` rule. `freezeout`: stage i's learning rate follows "
            "0.5 lr (1 + cos(pi t / t_i)) (survey eq. 10) and the stage freezes at t_i, t_i spaced from t_0 to 1 "
            "(linear, or Brock et al.'s cubic: t_i cubed, t_0 given pre-cubed); frozen stages run neither backward nor forward "
            "(their outputs are cached). Trainers advance one epoch in turns; CPU = process time of the training epochs.", "",
            "| model, schedule | test acc % exit 0 / 1 / 2 | training CPU s | speed-up vs joint (CPU) |", "|---|---|---|---|"]
        for r in records:
            groups.setdefault((r["model"], r["variant"]), []).append(r)
        for (model, variant), rs in groups.items():
            base = {r["seed"]: r["cpu_s"] for r in records if r["model"] == model and r["variant"] == next(iter(FREEZEOUT))}
            acc = " / ".join(mean_sd([r["test_accuracy"][k] for r in rs], 100, 2) for k in range(len(rs[0]["test_accuracy"])))
            lines.append(f"| {model} {variant} | {acc} | {mean_sd([r['cpu_s'] for r in rs], 1, 1)} | {mean_sd([base[r['seed']] / r['cpu_s'] for r in rs])}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", nargs="+", choices=("heads", "latency", "tiers", "freezeout", "cosine", "softcost", "all"), default=["all"])
    p.add_argument("--penalties", type=float, nargs="+", default=[0.3, 1.0], help="joint-cost penalty weights (softcost part)")
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=list(MODELS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--head-epochs", type=int, default=2)
    p.add_argument("--freezeout-epochs", type=int, default=3)
    p.add_argument("--freezeout-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--sklearn-samples", type=int, default=8000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-drop", type=float, default=0.5, help="accuracy loss allowed on val, in points")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--timed-samples", type=int, default=4096)
    p.add_argument("--work", default="/tmp/locallearn_survey_exits")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md files from the committed .json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    threadpool_limits(1)  # scikit-learn's BLAS too: one thread, like torch
    parts = ("latency", "tiers", "heads", "freezeout", "cosine", "softcost") if "all" in args.part else tuple(args.part)
    if args.report_only:
        for part in parts:
            saved = io.read_json(OUT / f"{part}.json")
            (OUT / f"{part}.md").write_text(markdown(part, saved["records"], saved["meta"]))
        return 0
    ds = load_data(args)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    for part in parts:
        load = os.getloadavg()[0]
        records = {"heads": part_heads, "latency": part_latency, "tiers": part_tiers, "freezeout": part_freezeout,
                   "cosine": part_cosine, "softcost": part_softcost}[part](ds, args)
        meta = {"command": "python benchmarks/survey_exits.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "git": git_revision(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": io.machine(), "load": [round(load, 2), round(os.getloadavg()[0], 2)], "args": vars(args)}
        io.write_json(OUT / f"{part}.json", {"meta": meta, "records": records})
        (OUT / f"{part}.md").write_text(markdown(part, records, meta))
        print((OUT / f"{part}.md").read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
