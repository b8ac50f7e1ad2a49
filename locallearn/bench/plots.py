"""Benchmark figures (matplotlib, Agg backend): accuracy per exit depth, accuracy vs time, memory vs depth.

Example:
    >>> import tempfile, os
    >>> from locallearn.bench.tables import fake_cell, summary_rows
    >>> rows = summary_rows([fake_cell(r, s) for r in ("e2e", "local") for s in (0, 1)])
    >>> path = os.path.join(tempfile.mkdtemp(), "exits.png")
    >>> plot_accuracy_per_exit(rows, path); os.path.getsize(path) > 0
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["model_label"], r["epochs"]), []).append(r)
    return groups


def _label(r: dict[str, Any]) -> str:
    return r["rule"] if r["schedule"] == "simultaneous" else f"{r['rule']} ({r['schedule']})"


def plot_accuracy_per_exit(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Test accuracy (mean ± std over seeds) at every exit depth, one line per rule and schedule."""
    groups = _groups(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, ((data, label, epochs), mine) in zip(axes[0], groups.items()):
        for r in mine:
            depth = [k + 1 for k, ms in enumerate(r["per_exit"]) if ms]
            means = [100 * ms[0] for ms in r["per_exit"] if ms]
            stds = [100 * ms[1] for ms in r["per_exit"] if ms]
            ax.errorbar(depth, means, yerr=stds, marker="o", capsize=3, label=_label(r))
        ax.set(title=f"{data}, {label}, {epochs} epochs", xlabel="exit (stage depth)", ylabel="test accuracy %")
        ax.set_xticks(range(1, max(len(r["per_exit"]) for r in mine) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_vs_time(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Last-exit test accuracy against CPU time per epoch as a multiple of ``e2e``'s, one point per rule."""
    groups = _groups(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    for ax, ((data, label, epochs), mine) in zip(axes[0], groups.items()):
        for r in mine:
            if r["cpu_ratio"] is None:
                continue
            ax.errorbar(r["cpu_ratio"][0], 100 * r["final"][0], xerr=r["cpu_ratio"][1], yerr=100 * r["final"][1],
                        marker="o", capsize=3, linestyle="none", label=_label(r))
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(title=f"{data}, {label}, {epochs} epochs", xlabel="CPU time per epoch / e2e's (same run)", ylabel="last-exit test accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_memory(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Peak saved-for-backward bytes as a multiple of ``e2e``'s against the number of stages L,
    one panel per layers-per-stage, one line per rule and schedule."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    panels = list(dict.fromkeys(r["layers_per_stage"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colours = {label: plt.cm.tab10(i % 10) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 2, 4.2), squeeze=False, sharey=True)
    for ax, layers in zip(axes[0], panels):
        mine = [r for r in rows if r["layers_per_stage"] == layers]
        depths = sorted({r["stages"] for r in mine})
        for label in labels:
            line = sorted((r for r in mine if r["label"] == label), key=lambda r: r["stages"])
            ax.plot([r["stages"] for r in line], [r["saved_ratio"] for r in line], marker="o", color=colours[label], label=label)
        ax.plot(depths, [1.3 / d for d in depths], color="black", ls="--", label="target 1.3 / L")
        ax.plot(depths, [line["floor"] for line in sorted((r for r in mine if r["label"] == labels[0]), key=lambda r: r["stages"])],
                color="grey", ls=":", label="local floor (d+1)/(dL+1)")
        ax.set(xscale="log", yscale="log", xlabel="stages L", title=f"{layers} layer(s) per stage")
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks([0.125, 0.25, 0.5, 1.0, 2.0])
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("peak saved bytes / e2e's")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
