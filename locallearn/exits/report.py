"""What an exit policy did on one split: exit histogram, per-exit accuracy, overthinking, agreement, cost; and figures.

* overthinking rate (Shallow-Deep Networks): the fraction of samples that some
  earlier exit classified right while the last exit got them wrong;
* agreement with the last exit: the fraction whose early-exit prediction equals
  the last exit's prediction.

Example:
    >>> import torch
    >>> from locallearn.exits import ExitLogits, Thresholds, evaluate
    >>> a, b = [3.0, 0.0], [0.0, 3.0]
    >>> data = ExitLogits(torch.tensor([[a, a], [b, a]]), torch.tensor([0, 0]), "test")
    >>> r = exit_report(data, evaluate(data, Thresholds.fixed("max-prob", [0.9])))
    >>> r["overthinking_rate"], r["exit_histogram"], r["accuracy"]
    (0.5, [2, 0], 1.0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from .._plotting import axes_for, finish
from .cache import ExitLogits
from .cost import CostTable
from .thresholds import Evaluation


def exit_report(data: ExitLogits, result: Evaluation, costs: CostTable | None = None) -> dict[str, Any]:
    """A JSON-ready summary of ``result`` (from ``evaluate`` on ``data``)."""
    correct = data.logits.argmax(-1) == data.labels  # [K, N]
    last = data.logits[-1].argmax(-1)
    left = [result.exit == k for k in range(data.n_exits)]
    report: dict[str, Any] = {
        "split": data.split,
        "n_samples": data.n_samples,
        "accuracy": result.accuracy,
        "last_exit_accuracy": result.last_exit_accuracy,
        "accuracy_drop_pt": 100 * (result.last_exit_accuracy - result.accuracy),
        "exit_histogram": [int(m.sum()) for m in left],
        "exit_fractions": result.exit_fractions.tolist(),
        "exit_accuracy_all_samples": correct.double().mean(1).tolist(),
        "exit_accuracy_of_samples_leaving_there": [
            float((result.prediction[m] == data.labels[m]).double().mean()) if m.any() else None for m in left
        ],
        "overthinking_rate": float((correct[:-1].any(0) & ~correct[-1]).double().mean()),
        "agreement_with_last_exit": float((result.prediction == last).double().mean()),
    }
    if costs is not None:
        report.update(
            cost_unit=costs.unit, mean_cost=result.mean_cost, full_cost=costs.full,
            mean_flops=result.mean_cost, full_flops=costs.full, relative_cost=result.relative_cost,
            flops_saved_fraction=1 - result.relative_cost, block_flops=list(costs.blocks), head_flops=list(costs.heads),
        )
    return report


def plot_accuracy_cost(
    path: str | Path | None, curves: dict[str, tuple[Sequence[float], Sequence[float]]], *,
    chosen: dict[str, tuple[float, float]] | None = None, title: str = "", ax: Any = None,
) -> Any:
    """Accuracy (%) against relative cost for each named curve ``(costs, accuracies)``; ``chosen`` marks points.
    Draws into ``ax`` when given (else a new figure), saves to ``path`` unless None, returns the figure.

    Example:
        >>> fig = plot_accuracy_cost(None, {"val": ([0.5, 1.0], [0.9, 0.95])}, chosen={"T": (0.5, 0.9)})
        >>> [line.get_label() for line in fig.axes[0].get_lines()]
        ['val', 'T']
    """
    fig, ax, own = axes_for(ax, (5.5, 4))
    for name, (cost, accuracy) in curves.items():
        ax.plot(list(cost), [100 * a for a in accuracy], label=name, lw=1.2)
    for name, (cost, accuracy) in (chosen or {}).items():
        ax.plot([cost], [100 * accuracy], "o", label=name)
    ax.set_xlabel("cost relative to the full network (FLOPs)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return finish(fig, path, own=own)


def plot_exit_histogram(path: str | Path | None, histograms: dict[str, Sequence[int]], *, title: str = "",
                        ax: Any = None) -> Any:
    """Side-by-side bars: how many samples left at each exit (numbered from 1), per named run. Draws into ``ax``
    when given (else a new figure), saves to ``path`` unless None, returns the figure.

    Example:
        >>> fig = plot_exit_histogram(None, {"test": [5, 3, 2]})
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['1', '2', '3']
    """
    fig, ax, own = axes_for(ax, (5.5, 3.5))
    width = 0.8 / max(len(histograms), 1)
    exits = max((len(c) for c in histograms.values()), default=0)
    for i, (name, counts) in enumerate(histograms.items()):
        ax.bar([k + i * width for k in range(len(counts))], list(counts), width=width, label=name)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(exits)], [str(k + 1) for k in range(exits)])
    ax.set_xlabel("exit")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return finish(fig, path, own=own)
