"""Write a comparison's outputs beside its results JSON: a tidy CSV, Markdown and LaTeX tables and figures.

For ``--out DIR/r.json``: ``DIR/r.csv`` (one row per configuration, seed and exit, exits numbered from 1: the one
CSV schema of ``locallearn.tidy``, shared with the benchmark suites),
``DIR/r_history.csv`` (one row per configuration, seed, epoch and exit), ``DIR/r.md`` (the ``summarise``
table, and with two seeds or more a paired t-test of every configuration against ``e2e`` over the
seeds), ``DIR/r.tex`` (a booktabs table) and the figures ``DIR/r_accuracy_per_exit``,
``DIR/r_accuracy_vs_time``, ``DIR/r_learning_curves``, each as PNG, PDF and SVG, with one colour per
rule and one line style per schedule in all of them (``locallearn.report``).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from locallearn.compare import compare
    >>> from locallearn.experiment import RunSpec
    >>> records = compare(RunSpec(data="synthetic", widths=(8,), epochs=1, progress=False), rules=["local"], seeds=[0])
    >>> out = Path(tempfile.mkdtemp()) / "r.json"
    >>> sorted(p.name for p in write_outputs(records, out) if p.suffix != ".pdf" and p.suffix != ".svg")
    ['r.csv', 'r.md', 'r.tex', 'r_accuracy_per_exit.png', 'r_accuracy_vs_time.png', 'r_history.csv', 'r_learning_curves.png']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from locallearn import io
from locallearn.compare import data_notes, format_table, labelled, summarise, varying_fields
from locallearn.report import latex_table, save_figure
from locallearn.report.paired import markdown_table as paired_table
from locallearn.report.paired import paired_against_reference
from locallearn.report.style import style_for_rows
from locallearn.tidy import CSV_FIELDS, tidy_rows, to_csv

HISTORY_FIELDS = ("label", "seed", "epoch", "stages_trained", "epoch_time_s", "exit", "train_loss", "test_accuracy",
                  "val_accuracy")


def history_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per record, evaluated epoch and exit (the learning curves in long form)."""
    rows = []
    for r in records:
        for h in r["history"]:
            losses = h.get("train_loss", [])
            for k, test in enumerate(h.get("test_accuracy", [])):
                rows.append({"label": r["label"], "seed": r["seed"], "epoch": h["epoch"],
                             "stages_trained": " ".join(map(str, h.get("stages_trained", []))),
                             "epoch_time_s": h["epoch_time_s"], "exit": k + 1,
                             "train_loss": losses[k] if k < len(losses) else None,
                             "test_accuracy": test, "val_accuracy": (h.get("val_accuracy") or [None] * (k + 1))[k]})
    return rows


SIBLINGS = (".csv", "_history.csv", ".md", ".tex", "_accuracy_per_exit.png", "_accuracy_vs_time.png", "_learning_curves.png")


def sibling_paths(out_json: str | Path) -> dict[str, Path]:
    """The files written beside ``out_json``, by their suffix (``".csv"`` -> ``DIR/r.csv``).

    Example:
        >>> sibling_paths("out/r.json")[".md"].as_posix()
        'out/r.md'
    """
    stem = Path(out_json).with_suffix("")
    return {name: Path(f"{stem}{name}") for name in SIBLINGS}


def write_outputs(records: Sequence[dict[str, Any]], out_json: str | Path, *, command: str = "") -> list[Path]:
    """Write the CSVs, the Markdown table and the figures beside ``out_json``; return their paths.
    ``command``, when given, is recorded in the Markdown as the command that produced the records."""
    from locallearn.bench import plots

    out_json = Path(out_json)
    paths = sibling_paths(out_json)
    records = labelled(records)  # labels and columns name every field that varies
    rows = summarise(records)
    paired = paired_against_reference(
        [{"config": r["label"], "group": (r["data"], r["model_label"], r["epochs"], *r["varying"].values()), "seed": r["seed"],
          "value": r["test_accuracy"][-1]} for r in records],
        reference=lambda label: label.partition("@")[0] == "e2e")
    io.write_text(paths[".csv"], to_csv(tidy_rows(records), [*CSV_FIELDS, *[n for n in varying_fields(records) if n not in CSV_FIELDS]]))
    io.write_text(paths["_history.csv"], to_csv(history_rows(records), HISTORY_FIELDS))
    io.write_text(paths[".md"], "\n".join([
        f"# Comparison: {len(rows)} configurations, {len(records)} runs", "",
        *([f"Command: `{command}`", ""] if command else []),
        f"Records: `{out_json.name}` (one per run, with its configuration key and per-epoch history). "
        "Exits and stages are numbered from 1; the best exit is picked per seed on validation accuracy. "
        "Time / epoch: one epoch of the whole network (for a schedule that trains one stage at a time, the "
        "total over the stages divided by the epochs per stage); time / stage-epoch: one epoch of that stage alone.",
        "", format_table(rows), "", *[f"{note}\n" for note in data_notes(rows)],
        *(["## Paired over seeds", "", "Each configuration against the reference of its data, model, epochs and "
           "varying fields (e2e where it ran) on the seeds both ran: the mean difference, its 95 % t interval and a paired "
           "t-test (scipy.stats.ttest_rel).", "", paired_table(paired, what="last-exit test accuracy"), ""]
          if paired else [])]))
    io.write_text(paths[".tex"], latex_table(rows, caption=f"{len(rows)} configurations, {len(records)} runs; test accuracy "
                                          "(%) as mean ± standard deviation over the n seeds and the 95 % t interval of the mean."))
    style = style_for_rows(rows)  # one look for every figure
    figures = [plots.plot_accuracy_per_exit(rows, style=style),
               plots.plot_accuracy_vs_time(rows, time="epoch_time_s", style=style),
               plots.plot_learning_curves(records, style=style)]
    written = list(paths.values())
    for fig, name in zip(figures, ("_accuracy_per_exit.png", "_accuracy_vs_time.png", "_learning_curves.png")):
        written += [p for p in save_figure(fig, paths[name]) if p.suffix != ".png"]
    return written
