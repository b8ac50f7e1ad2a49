"""Every plot function draws into a given ``ax`` and returns its figure; exits and stages are numbered from 1."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from locallearn.bench import plots  # noqa: E402
from locallearn.bench.tables import fake_cell, summary_rows  # noqa: E402
from locallearn.exits.report import plot_accuracy_cost, plot_exit_histogram  # noqa: E402
from locallearn.info.plane import plot_information_plane, plot_information_planes  # noqa: E402

ROWS = summary_rows([fake_cell(r, s, exits=3) for r in ("e2e", "local") for s in (0, 1)])
POINTS = [{"epoch": e, "stage": s, "ixt": 1.0 + e + s, "ity": 0.5 * e + 0.1 * s} for e in (0, 1, 2) for s in (1, 2)]
RECORD = {"label": "local@sequential", "data": "d", "model": "mlp", "epochs": 1, "seed": 0,
          "history": [{"epoch": 1, "stages_trained": [1], "test_accuracy": [0.5, 0.1]},
                      {"epoch": 2, "stages_trained": [2], "test_accuracy": [0.5, 0.7]}]}

CALLS = {
    "accuracy_per_exit": lambda ax: plots.plot_accuracy_per_exit(ROWS, ax=ax),
    "accuracy_vs_time": lambda ax: plots.plot_accuracy_vs_time(ROWS, ax=ax),
    "learning_curves": lambda ax: plots.plot_learning_curves([RECORD], ax=ax),
    "memory": lambda ax: plots.plot_memory([{"layers_per_stage": 1, "stages": L, "label": "local", "saved_ratio": 2 / (L + 1),
                                             "floor": 2 / (L + 1)} for L in (1, 2)], ax=ax),
    "information_plane": lambda ax: plot_information_plane(POINTS, ax=ax),
    "accuracy_cost": lambda ax: plot_accuracy_cost(None, {"val": ([0.5, 1.0], [0.9, 0.95])}, ax=ax),
    "exit_histogram": lambda ax: plot_exit_histogram(None, {"test": [5, 3, 2]}, ax=ax),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_plot_draws_into_the_given_axes_and_returns_its_figure(name):
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert CALLS[name](right) is fig
        assert right.has_data() and not left.has_data()
    finally:
        plt.close(fig)


def test_exits_are_numbered_from_one_on_the_axis():
    fig, ax = plt.subplots()
    plots.plot_accuracy_per_exit(ROWS, ax=ax)
    assert [int(t) for t in ax.get_xticks()] == [1, 2, 3]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3]
    plt.close(fig)


def test_learning_curve_counts_one_stage_epochs_as_fractions_and_reads_the_deepest_trained_exit():
    fig, ax = plt.subplots()
    plots.plot_learning_curves([RECORD], ax=ax)
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [0.5, 1.0] and list(line.get_ydata()) == pytest.approx([50.0, 70.0])
    plt.close(fig)


def test_information_plane_panel_shares_axes_and_draws_the_entropy_bounds():
    fig = plot_information_planes({"a": POINTS, "b": POINTS[:2], "c": POINTS}, hx=4.5, hy=1.25)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["a", "b", "c"]
    assert all(ax.get_xlim() == panels[0].get_xlim() and ax.get_ylim() == panels[0].get_ylim() for ax in panels)
    for ax in panels:
        xs = {tuple(line.get_xdata()) for line in ax.get_lines() if line.get_label() == "H(X)"}
        ys = {tuple(line.get_ydata()) for line in ax.get_lines() if line.get_label() == "H(Y)"}
        assert xs == {(4.5, 4.5)} and ys == {(1.25, 1.25)}
    legend = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert legend[:2] == ["stage 1", "stage 2"]
