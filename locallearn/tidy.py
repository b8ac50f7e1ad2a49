"""One CSV schema for every record of a training run (``compare`` and the benchmark suites): one row per record
and exit, with the record's ratios to its ``e2e`` baseline.

Every record has the fields ``run_record`` (``locallearn.compare``) gives it: ``label``, ``rule``,
``rule_kw``, ``schedule``, ``schedule_kw``, ``model``, ``model_label``, ``data``, ``epochs``, ``seed``,
per-exit ``test_accuracy`` and ``val_accuracy`` lists (exit ``k`` at index ``k - 1``), ``epoch_time_s``
and ``total_time_s``; a suite's cell adds its measurements (CPU time, saved-for-backward bytes, peak RSS),
and a column a record has no value for is empty. A ratio (``*_ratio_e2e``) is taken against the
``e2e@simultaneous`` record of the same data, model, epochs and seed, where there is one.

Example:
    >>> records = [{"label": f"{rule}@simultaneous", "rule": rule, "rule_kw": {}, "schedule": "simultaneous",
    ...             "schedule_kw": {}, "model": "mlp", "model_label": "mlp 8", "data": "synthetic", "epochs": 1,
    ...             "seed": 0, "test_accuracy": [0.5, acc], "val_accuracy": [0.5, acc], "epoch_time_s": time,
    ...             "total_time_s": time} for rule, acc, time in (("e2e", 0.9, 2.0), ("local", 0.8, 1.0))]
    >>> rows = tidy_rows(records)
    >>> [(r["label"], r["exit"], r["is_last_exit"], r["time_ratio_e2e"]) for r in rows]
    [('e2e@simultaneous', 1, False, 1.0), ('e2e@simultaneous', 2, True, 1.0), ('local@simultaneous', 1, False, 0.5), ('local@simultaneous', 2, True, 0.5)]
    >>> to_csv(rows).splitlines()[0] == ",".join(CSV_FIELDS)
    True
"""

from __future__ import annotations

import csv
import io as _io
import json
from typing import Any, Iterable, Sequence

BASELINE = "e2e@simultaneous"

CSV_FIELDS = (
    "label", "rule", "rule_options", "schedule", "schedule_options", "model", "model_label", "data", "epochs", "seed",
    "exit", "is_last_exit", "test_accuracy", "val_accuracy", "epoch_time_s", "time_ratio_e2e", "total_time_s",
    "epoch_cpu_s", "cpu_ratio_e2e", "total_cpu_s", "saved_bytes_peak", "saved_ratio_e2e", "saved_bytes_total",
    "peak_rss_bytes", "session",
)


def record_label(record: dict[str, Any]) -> str:
    """A record's configuration label, ``rule[:options]@schedule[:options]`` (cells recorded before labels had none:
    none had options)."""
    return record.get("label") or f"{record['rule']}@{record['schedule']}"


def group(record: dict[str, Any]) -> tuple[str, str, int]:
    """Records compared with one another: same data, model and epochs (a store may hold runs of several lengths)."""
    return record["data"], record["model_label"], record["epochs"]


def baselines(records: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """The ``e2e@simultaneous`` record of each (data, model, epochs, seed)."""
    return {(*group(r), r["seed"]): r for r in records if record_label(r) == BASELINE}


def ratio(value: float | None, base: dict[str, Any] | None, field: str) -> float | None:
    """``value`` over the baseline's ``field`` (None where either is missing or zero)."""
    return value / base[field] if value is not None and base and base.get(field) else None


def tidy_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per record and exit, in the CSV schema, with the record's ratios to its seed's ``e2e`` record."""
    base = baselines(records)
    rows = []
    for r in records:
        b = base.get((*group(r), r["seed"]))
        exits = len(r["test_accuracy"])
        for k, accuracy in enumerate(r["test_accuracy"]):
            rows.append({
                **r, "label": record_label(r),
                "rule_options": json.dumps(r.get("rule_kw", {}), sort_keys=True),
                "schedule_options": json.dumps(r.get("schedule_kw", {}), sort_keys=True),
                "exit": k + 1, "is_last_exit": k == exits - 1, "test_accuracy": accuracy,
                "val_accuracy": r["val_accuracy"][k] if r.get("val_accuracy") else None,  # none: val_size=0
                "time_ratio_e2e": ratio(r.get("epoch_time_s"), b, "epoch_time_s"),
                "cpu_ratio_e2e": ratio(r.get("epoch_cpu_s"), b, "epoch_cpu_s"),
                "saved_ratio_e2e": ratio(r.get("saved_bytes_peak"), b, "saved_bytes_peak"),
            })
    return rows


def to_csv(rows: Sequence[dict[str, Any]], fields: Sequence[str] = CSV_FIELDS) -> str:
    """Rows as CSV text with the columns ``fields`` (a row's other keys left out, a missing one empty)."""
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({f: r.get(f) for f in fields} for r in rows)
    return buffer.getvalue()
