"""From cell records to per-group summaries with ratios to ``e2e`` and Markdown (the CSV: ``locallearn.tidy``).

A cell's time and memory ratios are taken against the ``e2e`` cell under
``simultaneous`` with the same data, model and seed (trained in turns with it,
epoch by epoch, in the same suite run), then averaged over seeds.

Example:
    >>> cells = [fake_cell(rule, seed) for rule in ("e2e", "local") for seed in (0, 1)]
    >>> rows = summary_rows(cells)
    >>> [(r["rule"], round(r["cpu_ratio"][0], 2)) for r in rows]
    [('e2e', 1.0), ('local', 0.5)]
    >>> print(markdown_table(rows).splitlines()[0][:40])
    | data | model | schedule | rule | seeds
"""

from __future__ import annotations

from typing import Any

from locallearn.bench.anchors import anchors_for
from locallearn.compare import exit_accuracies, mean_std
from locallearn.report.stats import format_mean_sd
from locallearn.tidy import baselines, group, ratio, record_label

MIB = 2**20


def fake_cell(rule: str, seed: int, *, schedule: str = "simultaneous", exits: int = 2) -> dict[str, Any]:
    """A made-up cell record (for examples and tests): ``e2e`` twice as slow and as memory-hungry as the rest."""
    factor = 2.0 if rule == "e2e" else 1.0
    return {
        "data": "synthetic", "model": "mlp", "model_label": "mlp", "rule": rule, "schedule": schedule, "seed": seed,
        "epochs": 1, "test_accuracy": [0.5 + 0.1 * k + 0.01 * seed for k in range(exits)],
        "val_accuracy": [0.5 + 0.1 * k for k in range(exits)], "epoch_time_s": factor, "total_time_s": factor,
        "epoch_cpu_s": factor, "total_cpu_s": factor,
        "saved_bytes_peak": int(1000 * factor), "saved_bytes_total": int(1000 * factor), "peak_rss_bytes": 10 * MIB,
        "session": "s0",
    }


def summary_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (data, model, schedule, rule): accuracies per exit, final and best exit, time, memory, ratios."""
    base = baselines(cells)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in cells:  # one configuration: never merged with another
        groups.setdefault((*group(c), record_label(c)), []).append(c)
    rows = []
    for (data, label, epochs, config), rc in groups.items():
        bs = [base.get((data, label, epochs, c["seed"])) for c in rc]
        rows.append({
            "data": data, "model": rc[0]["model"], "model_label": label, "schedule": rc[0]["schedule"],
            "rule": rc[0]["rule"], "label": config, "seeds": len({c["seed"] for c in rc}), "epochs": epochs,
            **exit_accuracies(rc),
            "epoch_time_s": mean_std([c["epoch_time_s"] for c in rc]),
            "total_time_s": mean_std([c["total_time_s"] for c in rc]),
            "time_ratio": mean_std([ratio(c["epoch_time_s"], b, "epoch_time_s") for c, b in zip(rc, bs)]),
            "epoch_cpu_s": mean_std([c["epoch_cpu_s"] for c in rc]),
            "cpu_ratio": mean_std([ratio(c["epoch_cpu_s"], b, "epoch_cpu_s") for c, b in zip(rc, bs)]),
            "saved_bytes_peak": mean_std([c["saved_bytes_peak"] for c in rc]),
            "saved_ratio": mean_std([ratio(c["saved_bytes_peak"], b, "saved_bytes_peak") for c, b in zip(rc, bs)]),
            "peak_rss_bytes": max(c["peak_rss_bytes"] for c in rc),
            "sessions": sorted({c.get("session") for c in rc} | {b.get("session") for b in bs if b}),
        })
    return rows


def _pct(ms: tuple[float, float] | None) -> str:
    return format_mean_sd(ms, scale=100)


def _num(ms: tuple[float, float] | None, digits: int = 2, scale: float = 1.0) -> str:
    return format_mean_sd(ms, scale=1 / scale, digits=digits)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The main table: accuracy of every exit, time and saved bytes with their ratios to ``e2e``."""
    lines = [
        "| data | model | schedule | rule | seeds | epochs | test acc % per exit (first → last) | last exit % | best exit (by val) % "
        "| CPU s / epoch | CPU × e2e | wall s / epoch | wall × e2e | saved for backward MiB / batch (peak) | saved × e2e "
        "| peak RSS MiB (process) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_exit = " / ".join("–" if ms is None else f"{100 * ms[0]:.1f}" for ms in r["per_exit"])
        lines.append(
            f"| {r['data']} | {r['model_label']} | {r['schedule']} | {r['label'].partition('@')[0]} | {r['seeds']} | {r['epochs']} | {per_exit} "
            f"| {_pct(r['final'])} | {_pct(r['best'])} | {_num(r['epoch_cpu_s'], 2)} | {_num(r['cpu_ratio'])} "
            f"| {_num(r['epoch_time_s'], 2)} | {_num(r['time_ratio'])} "
            f"| {_num(r['saved_bytes_peak'], 2, MIB)} | {_num(r['saved_ratio'])} | {r['peak_rss_bytes'] / MIB:.0f} |"
        )
    return "\n".join(lines)


def anchor_table(rows: list[dict[str, Any]]) -> str:
    """Our last-exit accuracy beside every published number for the same data, model kind and rule."""
    lines = [
        "| data | model | rule | ours: last exit % (epochs) | anchor % | anchor source | how the anchor's setting differs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        defaults = r["label"] == f"{r['rule']}@simultaneous"  # a kind's anchors are for a rule's defaults, simultaneous
        for a in anchors_for(r["data"], r["model"], r["rule"], r["model_label"]):
            if a.model_label is None and not defaults:
                continue
            lines.append(
                f"| {r['data']} | {r['model_label']} | {r['rule']} | {_pct(r['final'])} ({r['epochs']}) | {a.accuracy:.2f} "
                f"| {a.source} | {a.setting} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def schedule_totals(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each rule run under both: total training time of ``sequential`` over ``simultaneous`` (same epochs per stage)."""
    by = {(*group(c), *record_label(c).split("@"), c["seed"]): c for c in cells}
    out = []
    for (data, label, epochs, rule, schedule, seed), c in by.items():
        other = by.get((data, label, epochs, rule, "simultaneous", seed))
        if schedule == "sequential" and other:
            out.append({"data": data, "model_label": label, "rule": rule, "seed": seed,
                        "sequential_cpu_s": c["total_cpu_s"], "simultaneous_cpu_s": other["total_cpu_s"],
                        "cpu_ratio": c["total_cpu_s"] / other["total_cpu_s"],
                        "sequential_s": c["total_time_s"], "simultaneous_s": other["total_time_s"],
                        "ratio": c["total_time_s"] / other["total_time_s"]})
    return out
