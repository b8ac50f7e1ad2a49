"""The ``data-path`` benchmark: what augmentation and a DataLoader cost per epoch, against in-memory data.

Three runs of one network and rule train in turns, one epoch each per round, so
they share the machine's conditions: in-memory tensors (the baseline), the same
with vectorised ``crop2,flip`` augmentation, and a ``DataLoader`` over a
``TensorDataset`` with a ``SeededSampler`` (same batches as the baseline). Each
epoch's process CPU time and wall time are measured; the report gives the
median per run and the ratios to the baseline, against the 1.10x targets.

Example:
    >>> from locallearn import data
    >>> rows = data_path_rows(data.load("digits"), widths=(16,), epochs=1, batch_size=256)
    >>> [r["run"] for r in rows]
    ['in-memory', 'in-memory + crop2,flip', 'DataLoader']
    >>> rows[0]["cpu_ratio"]
    1.0
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import DataLoader, TensorDataset

from locallearn import data as datasets
from locallearn import io
from locallearn.provenance import git_revision, load_average
from locallearn.io import write_text
from locallearn.builders import build_mlp
from locallearn.data import Dataset, SeededSampler, TensorBatches, augment
from locallearn.trainer import TrainConfig, Trainer, seed_everything

TARGET = 1.10


def data_path_rows(
    ds: Dataset, *, widths: Sequence[int] = (1024, 1024, 1024), epochs: int = 3, batch_size: int = 128, rule: str = "local"
) -> list[dict[str, Any]]:
    """Per run: median CPU and wall seconds per epoch, and their ratios to the in-memory run."""
    loader = DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=batch_size, sampler=SeededSampler(len(ds.x_train)))
    in_memory = lambda spec: TensorBatches(ds.x_train, ds.y_train, batch_size=batch_size, seed=0,  # noqa: E731
                                           transform=augment.parse(spec))  # the batches a Trainer makes of ds
    runs = {"in-memory": in_memory("none"), "in-memory + crop2,flip": in_memory("crop2,flip"), "DataLoader": loader}
    trainers = {}
    for name, source in runs.items():
        seed_everything(0)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, eval_every=0, progress=False)
        # batch sources with no val/test data: nothing is evaluated, the epochs alone are timed
        trainers[name] = Trainer(build_mlp(ds.input_shape, widths, ds.num_classes), source, rule=rule, config=config)
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(epochs):
        for name, trainer in trainers.items():
            c, w = time.process_time(), time.perf_counter()
            trainer.fit(epochs=1)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    base_cpu, base_wall = statistics.median(cpu["in-memory"]), statistics.median(wall["in-memory"])
    return [
        {
            "run": name, "epochs": epochs, "batch_size": batch_size, "widths": list(widths), "rule": rule,
            "cpu_s_per_epoch": statistics.median(cpu[name]), "wall_s_per_epoch": statistics.median(wall[name]),
            "cpu_ratio": round(statistics.median(cpu[name]) / base_cpu, 3),
            "wall_ratio": round(statistics.median(wall[name]) / base_wall, 3),
            "cpu_s_all_epochs": cpu[name], "wall_s_all_epochs": wall[name],
        }
        for name in runs
    ]


def run_data_path(*, out: str | Path, data: str = "fashion-mnist", data_dir: str | None = None, epochs: int = 3,
                  command: str = "") -> Path:
    """Measure, then write ``data_path.json`` and ``results.md`` into ``out``."""
    out = Path(out)
    load_start, date = load_average(), time.strftime("%Y-%m-%d %H:%M:%S %Z")
    rows = data_path_rows(datasets.load(data, data_dir=data_dir), epochs=epochs)
    meta = {"command": command, "git": git_revision(), "machine": io.machine(), "date": date, "data": data,
            "load_start": load_start, "load_end": load_average()}
    io.write_json(out / "data_path.json", {"meta": meta, "rows": rows})
    lines = [
        "# Benchmark `data-path`: augmentation and DataLoader input against in-memory tensors", "",
        f"{data}, MLP {'x'.join(map(str, rows[0]['widths']))}, rule `{rows[0]['rule']}`, batch {rows[0]['batch_size']}, "
        f"{epochs} epochs per run, the three runs in turns (one epoch each per round), one torch thread. "
        f"Median per epoch; ratios to the in-memory run; target <= {TARGET:.2f}x.", "",
        "| run | CPU s / epoch | wall s / epoch | CPU ratio | wall ratio | target met (CPU) |",
        "|---|---|---|---|---|---|",
        *(f"| {r['run']} | {r['cpu_s_per_epoch']:.2f} | {r['wall_s_per_epoch']:.2f} | {r['cpu_ratio']:.3f} | "
          f"{r['wall_ratio']:.3f} | {'yes' if r['cpu_ratio'] <= TARGET else 'no'} |" for r in rows),
        "",
        "## Provenance", "", f"Command: `{command}`  ", f"Git: `{json.dumps(meta['git'])}`  ", f"Date: {date}  ",
        f"Load 1/5/15 min: {load_start} → {meta['load_end']}  ", f"Machine: `{json.dumps(meta['machine'])}`", "",
    ]
    path = out / "results.md"
    write_text(path, "\n".join(lines))
    return path
