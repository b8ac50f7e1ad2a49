"""Write a suite's results: ``results.csv`` (tidy), ``results.md`` (tables, provenance) and PNG plots.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from locallearn.bench.suites import SUITES
    >>> from locallearn.bench.tables import fake_cell
    >>> out = Path(tempfile.mkdtemp())
    >>> path = write_report(SUITES["quick"], [fake_cell(r, 0) for r in ("e2e", "local")], out=out)
    >>> sorted(p.name for p in out.iterdir())
    ['accuracy_per_exit.png', 'accuracy_vs_time.png', 'results.csv', 'results.md']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from locallearn import io
from locallearn.io import write_text
from locallearn.bench import plots, tables
from locallearn.bench.cell import per_epoch
from locallearn.bench.suites import Suite
from locallearn.store import FOLDER_STORE, read_store
from locallearn.tidy import tidy_rows, to_csv

MEASUREMENT_NOTES = (
    "Accuracy: test split, after the last epoch; every exit, mean ± std over seeds. "
    "Best exit is picked per seed on validation accuracy.",
    "CPU s / epoch: CPU time (`time.process_time`, evaluation left out) of one epoch of every stage, median over "
    "epochs; the primary time measure, since wall time on a shared machine mostly measures the other jobs. Benchmarks "
    "run with one torch thread unless `--threads` says otherwise, so CPU time is the work done. Wall s / epoch: the "
    "trainer's median epoch. For `sequential` (one stage at a time, stages of unequal cost) both are the total over "
    "all stages, cache building included, divided by the epochs per stage. `× e2e`: ratio to the `e2e` + `simultaneous` cell of the same seed, data and "
    "model, averaged over seeds. The cells of one seed, data and model train in turns, one epoch (of every stage) each, "
    "so every cell's epochs see the same machine conditions.",
    "Saved for backward: exact bytes autograd saves in one training batch through the schedule's own `train_epoch` "
    "(`torch.autograd.graph.saved_tensors_hooks`), each storage counted once with `untyped_storage().nbytes()`, the "
    "network's parameters and buffers excluded; *peak* = most bytes held at once during the step.",
    "Peak RSS: `ru_maxrss` of the benchmark process when the cell finished: process-wide and never decreasing, so a cell "
    "shows the largest value of the cells run before it in the same process.",
)


def _provenance(out: Path) -> list[str]:
    """The provenance table of the store in ``out`` (of whatever kind it is)."""
    runs = read_store(out).runs if (out / FOLDER_STORE).is_file() else []
    lines = ["| session | date | command | git commit (package modified?) | load 1/5/15 min start → end | cells run |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        git = r.get("git", {})
        lines.append(
            f"| {r['session']} | {r['date']} | `{r['command']}` | {git.get('commit')} ({git.get('package_modified')}) "
            f"| {r.get('load_start')} → {r.get('load_end', 'interrupted')} | {r['cells_to_run']} of {r['cells']} |"
        )
    machine = runs[-1]["machine"] if runs else io.machine()
    return [*lines, "", f"Machine: `{json.dumps(machine)}`"]


def write_report(suite: Suite, cells: list[dict[str, Any]], *, out: str | Path) -> Path:
    """Write the CSV, the Markdown report and the plots of ``cells`` into ``out``; return the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = [{**c, **per_epoch(c)} if "epoch_cpu_times_s" in c else c for c in cells]  # one definition for old records too
    rows = tables.summary_rows(cells)
    write_text(out / "results.csv", to_csv(tidy_rows(cells)))
    plots.plot_accuracy_per_exit(rows, out / "accuracy_per_exit.png")
    plots.plot_accuracy_vs_time(rows, out / "accuracy_vs_time.png")
    parts = ["## Accuracy, time and memory", "", tables.markdown_table(rows), ""]
    anchors = tables.anchor_table(rows)
    if anchors:
        parts += ["## Published anchors beside ours", "", anchors, ""]
    totals = tables.schedule_totals(cells)
    if totals:
        parts += ["## `sequential` (with its cache) against `simultaneous`: total training time, same epochs per stage", "",
                  "| data | model | rule | seed | sequential CPU s | simultaneous CPU s | CPU ratio | sequential wall s "
                  "| simultaneous wall s | wall ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
        parts += [f"| {t['data']} | {t['model_label']} | {t['rule']} | {t['seed']} | {t['sequential_cpu_s']:.1f} "
                  f"| {t['simultaneous_cpu_s']:.1f} | {t['cpu_ratio']:.2f} | {t['sequential_s']:.1f} "
                  f"| {t['simultaneous_s']:.1f} | {t['ratio']:.2f} |" for t in totals]
        parts.append("")
    sessions = sorted({s for r in rows for s in r["sessions"] if s})
    if len(sessions) > 1:
        parts += [f"Note: these cells come from {len(sessions)} invocations ({', '.join(sessions)}); a ratio may compare "
                  "timings taken in different invocations.", ""]
    parts += ["## How it was measured", "", *[f"- {n}" for n in MEASUREMENT_NOTES], "",
              "Plots: [accuracy per exit](accuracy_per_exit.png), [accuracy vs time](accuracy_vs_time.png); "
              "every cell in [results.csv](results.csv) and [cells.json](cells.json).", ""]
    return write_markdown(out, title=f"Benchmark suite `{suite.name}`", description=suite.description, notes=suite.notes,
                          body=parts)


def write_markdown(out: str | Path, *, title: str, description: str, body: list[str], notes: Sequence[str] = ()) -> Path:
    """``out/results.md`` in the shape every benchmark shares: title, what ran, ``body`` (lines), provenance."""
    out = Path(out)
    parts = [f"# {title}", "", description.rstrip(".") + ".", *[f"\n{n}" for n in notes], "", *body,
             "## Provenance", "", *_provenance(out), ""]
    path = out / "results.md"
    write_text(path, "\n".join(parts))
    return path
