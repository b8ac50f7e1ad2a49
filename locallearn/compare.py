"""Compare rules side by side: every rule x seed on the same data, model and schedule.

Example:
    >>> from locallearn.compare import compare, summarise
    >>> from locallearn.experiment import RunSpec
    >>> records = compare(RunSpec(data="synthetic", widths=(16,), epochs=1, progress=False), rules=["local", "e2e"], seeds=[0])
    >>> sorted({r["rule"] for r in records})
    ['e2e', 'local']
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Sequence

import locallearn
from locallearn import data as datasets
from locallearn import io
from locallearn.experiment import RunSpec, run
from locallearn.rules import RULES


def compare(base: RunSpec, *, rules: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Train ``base`` once per rule and seed; one record per (rule, seed, exit)."""
    for name in rules:
        RULES.get(name)  # fail before any training on an unknown name
    ds = datasets.load(base.data, data_dir=base.data_dir)
    machine = io.machine()
    records = []
    for rule in rules:
        for seed in seeds:
            spec = dataclasses.replace(base, rule=rule, seed=seed)
            result = run(spec, ds)
            epoch_times = [r["epoch_time_s"] for r in result.history]
            test, val = result.final("test"), result.final("val")
            for k, accuracy in enumerate(test):
                records.append(
                    {
                        "rule": rule,
                        "schedule": spec.schedule,
                        "data": spec.data,
                        "model": spec.model,
                        "seed": seed,
                        "exit": k,
                        "is_last_exit": k == len(test) - 1,
                        "test_accuracy": accuracy,
                        "val_accuracy": val[k],
                        "epoch_time_s": statistics.median(epoch_times),  # median: robust to one-off warm-up
                        "config": result.config,
                        "version": locallearn.__version__,
                        "machine": machine,
                    }
                )
    return records


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rule: final-exit and best-exit test accuracy (mean, std over seeds) and time per epoch.

    The best exit is chosen per seed on validation accuracy, never on test accuracy.
    """
    rows = []
    for rule in dict.fromkeys(r["rule"] for r in records):
        mine = [r for r in records if r["rule"] == rule]
        seeds = sorted({r["seed"] for r in mine})
        final, best, times = [], [], []
        for seed in seeds:
            exits = sorted((r for r in mine if r["seed"] == seed), key=lambda r: r["exit"])
            final.append(exits[-1]["test_accuracy"])
            best.append(max(exits, key=lambda r: (r["val_accuracy"], r["exit"]))["test_accuracy"])
            times.append(exits[0]["epoch_time_s"])
        rows.append({"rule": rule, "seeds": len(seeds), "final": _mean_std(final), "best": _mean_std(best), "epoch_time_s": _mean_std(times)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``summarise`` rows, accuracies in percent."""
    lines = [
        "| rule | seeds | final exit test acc % | best exit (by val) test acc % | time / epoch s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        (fm, fs), (bm, bs), (tm, ts) = r["final"], r["best"], r["epoch_time_s"]
        lines.append(f"| {r['rule']} | {r['seeds']} | {100 * fm:.2f} ± {100 * fs:.2f} | {100 * bm:.2f} ± {100 * bs:.2f} | {tm:.3f} ± {ts:.3f} |")
    return "\n".join(lines)
