"""Figures (matplotlib, Agg backend): accuracy per exit, accuracy vs time, learning curves, memory vs depth.

Every function draws into ``ax`` when given one (all rows on that one panel, so a figure of your own can
combine them), else into a new figure with one panel per group of comparable rows (same data, model and
epochs); it saves the figure to ``path`` when given, and returns the figure. Exits and stages are numbered
from 1. Each rule has its colour and each schedule its line style (``locallearn.report.style``: pass one
``style`` to every figure of a comparison; by default the registry's fixed colours), and rows that share
both get their own markers. Rows are ``locallearn.compare.summarise`` rows or ``locallearn.bench.tables.summary_rows`` rows.

Example:
    >>> import tempfile, os
    >>> from locallearn.bench.tables import fake_cell, summary_rows
    >>> rows = summary_rows([fake_cell(r, s) for r in ("e2e", "local") for s in (0, 1)])
    >>> path = os.path.join(tempfile.mkdtemp(), "exits.png")
    >>> fig = plot_accuracy_per_exit(rows, path); os.path.getsize(path) > 0
    True
    >>> fig, ax = plt.subplots(); plot_accuracy_vs_time(rows, ax=ax) is fig
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from locallearn._plotting import finish  # noqa: E402
from locallearn.report.style import Style, palette, style_for_rows, variants  # noqa: E402

# accuracy-vs-time x axes: row field -> axis label
TIME_AXES = {
    "cpu_ratio": "CPU time per epoch / e2e's (same run)",
    "time_ratio": "wall time per epoch / e2e's (same run)",
    "epoch_cpu_s": "CPU s per epoch (every stage)",
    "epoch_time_s": "wall s per epoch (every stage)",
}


def label_of(row: dict[str, Any]) -> str:
    """A row's legend entry: its configuration label, else the rule (and schedule unless simultaneous)."""
    if row.get("label"):
        return row["label"]
    return row["rule"] if row["schedule"] == "simultaneous" else f"{row['rule']} ({row['schedule']})"


def _group(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["data"], row.get("model_label", row["model"]), row["epochs"]


def _panels(rows: Sequence[dict[str, Any]], draw: Callable[[Axes, list[dict[str, Any]]], None],
            path: str | Path | None, ax: Axes | None) -> Figure:
    """Draw every group of rows on its own panel of a new figure, or all rows on ``ax``."""
    if ax is not None:
        draw(ax, list(rows))
        return finish(ax.figure, path, own=False)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_group(r), []).append(r)
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(5.5 * max(len(groups), 1), 4.2), squeeze=False)
    for panel, ((data, model, epochs), mine) in zip(axes[0], groups.items()):
        draw(panel, mine)
        panel.set_title(f"{data}, {model}, {epochs} epochs")
    return finish(fig, path, own=True)


def _looks(rows: Sequence[dict[str, Any]], style: Style | None) -> list[dict[str, Any]]:
    """Each row's colour, line style and marker (matplotlib's cycle for rows that name no rule or schedule)."""
    if not all("rule" in r and "schedule" in r for r in rows):
        return [{"marker": "o"} for _ in rows]
    style = style or style_for_rows(rows)
    return [style.line(r, v) for r, v in zip(rows, variants(rows, label_of))]


def plot_accuracy_per_exit(rows: Sequence[dict[str, Any]], path: str | Path | None = None, *,
                           ax: Axes | None = None, style: Style | None = None) -> Figure:
    """Test accuracy (mean ± std over seeds) at every exit, one line per configuration."""

    def draw(ax: Axes, mine: list[dict[str, Any]]) -> None:
        for r, look in zip(mine, _looks(mine, style)):
            depth = [k + 1 for k, ms in enumerate(r["per_exit"]) if ms]
            ax.errorbar(depth, [100 * ms[0] for ms in r["per_exit"] if ms],
                        yerr=[100 * ms[1] for ms in r["per_exit"] if ms], capsize=3, label=label_of(r), **look)
        ax.set(xlabel="exit (stage depth, 1 = first)", ylabel="test accuracy %")
        ax.set_xticks(range(1, max((len(r["per_exit"]) for r in mine), default=1) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    return _panels(rows, draw, path, ax)


def plot_accuracy_vs_time(rows: Sequence[dict[str, Any]], path: str | Path | None = None, *, ax: Axes | None = None,
                          time: str = "cpu_ratio", style: Style | None = None) -> Figure:
    """Last-exit test accuracy against a time per epoch (``time``: a key of ``TIME_AXES``), one point per row."""
    if time not in TIME_AXES:
        raise ValueError(f"time must be one of {', '.join(TIME_AXES)}; got {time!r}.")

    def draw(ax: Axes, mine: list[dict[str, Any]]) -> None:
        for r, look in zip(mine, _looks(mine, style)):
            if r.get(time) is None:
                continue
            ax.errorbar(r[time][0], 100 * r["final"][0], xerr=r[time][1], yerr=100 * r["final"][1],
                        capsize=3, label=label_of(r), **{**look, "linestyle": "none"})
        if time.endswith("ratio"):
            ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel=TIME_AXES[time], ylabel="last-exit test accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    return _panels(rows, draw, path, ax)


def learning_curve(record: dict[str, Any], split: str = "test") -> tuple[list[float], list[float]]:
    """``(epochs, accuracies)`` of one run's history: epochs in units of a whole-network epoch (a one-stage
    epoch of an L-stage sequential run counts 1/L), accuracy of the deepest exit trained so far.

    Example:
        >>> h = [{"epoch": 1, "stages_trained": [1], "test_accuracy": [0.5, 0.1]},
        ...      {"epoch": 2, "stages_trained": [2], "test_accuracy": [0.5, 0.7]}]
        >>> learning_curve({"epochs": 1, "history": h})
        ([0.5, 1.0], [0.5, 0.7])
    """
    history = record["history"]
    scale = record["epochs"] / max(len(history), 1)
    xs, ys, deepest = [], [], 0
    for r in history:
        deepest = max([deepest, *r.get("stages_trained", [len(r.get(f"{split}_accuracy", [0]))])])
        if f"{split}_accuracy" in r:
            accuracies = r[f"{split}_accuracy"]
            xs.append(r["epoch"] * scale)
            ys.append(accuracies[min(deepest, len(accuracies)) - 1])
    return xs, ys


def plot_learning_curves(records: Sequence[dict[str, Any]], path: str | Path | None = None, *,
                         ax: Axes | None = None, split: str = "test", style: Style | None = None) -> Figure:
    """Accuracy of the deepest trained exit after every evaluated epoch, mean over seeds, one line per
    configuration (records of ``locallearn.compare``, each with its ``history``)."""

    def draw(ax: Axes, mine: list[dict[str, Any]]) -> None:
        by_label: dict[str, list[tuple[list[float], list[float]]]] = {}
        firsts: dict[str, dict[str, Any]] = {}
        for r in mine:
            by_label.setdefault(label_of(r), []).append(learning_curve(r, split))
            firsts.setdefault(label_of(r), r)
        looks = dict(zip(firsts, _looks(list(firsts.values()), style)))
        for label, curves in by_label.items():
            n = min(len(xs) for xs, _ in curves)
            mean = [100 * sum(ys[i] for _, ys in curves) / len(curves) for i in range(n)]
            ax.plot(curves[0][0][:n], mean, label=label, markersize=4, **looks[label])
        ax.set(xlabel="epochs (of the whole network)", ylabel=f"{split} accuracy %, deepest trained exit")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    return _panels(records, draw, path, ax)


def plot_memory(rows: Sequence[dict[str, Any]], path: str | Path | None = None, *, ax: Axes | None = None) -> Figure:
    """Peak saved-for-backward bytes as a multiple of ``e2e``'s against the number of stages L, one panel per
    layers-per-stage (``ax``: rows of one layers-per-stage only), one line per rule and schedule."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    panels = list(dict.fromkeys(r["layers_per_stage"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    if all("rule" in r and "schedule" in r for r in rows):  # the comparison's colour per rule, style per schedule
        style = style_for_rows(rows)
        looks = {r["label"]: {"color": style.colour(r["rule"]), "linestyle": style.linestyle(r["schedule"])} for r in rows}
    else:
        looks = {label: {"color": colour} for label, colour in zip(labels, palette(len(labels)))}
    if ax is not None and len(panels) != 1:
        raise ValueError(f"One axes holds one layers-per-stage panel; these rows have {len(panels)}: {panels}.")
    if ax is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 2, 4.2), squeeze=False, sharey=True)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    for panel, layers in zip(axes, panels):
        mine = [r for r in rows if r["layers_per_stage"] == layers]
        depths = sorted({r["stages"] for r in mine})
        for label in labels:
            line = sorted((r for r in mine if r["label"] == label), key=lambda r: r["stages"])
            panel.plot([r["stages"] for r in line], [r["saved_ratio"] for r in line], marker="o", label=label, **looks[label])
        panel.plot(depths, [1.3 / d for d in depths], color="black", ls="--", label="target 1.3 / L")
        panel.plot(depths, [r["floor"] for r in sorted((r for r in mine if r["label"] == labels[0]), key=lambda r: r["stages"])],
                   color="grey", ls=":", label="local floor (d+1)/(dL+1)")
        panel.set(xscale="log", yscale="log", xlabel="stages L", title=f"{layers} layer(s) per stage")
        panel.set_xticks(depths, [str(d) for d in depths])
        panel.xaxis.set_minor_formatter(NullFormatter())
        panel.set_yticks([0.125, 0.25, 0.5, 1.0, 2.0])
        panel.yaxis.set_major_formatter(ScalarFormatter())
        panel.yaxis.set_minor_formatter(NullFormatter())
        panel.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("peak saved bytes / e2e's")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(fig, path, own=ax is None)
