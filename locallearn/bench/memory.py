"""The ``memory`` suite: saved-for-backward bytes against the number of equal stages L.

The network is an MLP of L equal stages, each a block of ``d`` layers
``Linear(784, 784) -> ReLU`` (the first flattens the 28x28 input, so every
stage is the same size) with a linear head; ``d`` = 1 and 4. For L = 1, 2, 4, 8 and every registered rule under ``simultaneous`` (and
``local`` under ``sequential``), one training batch of 128 goes through the
schedule's own ``train_epoch`` (see ``locallearn.bench.cell.step_memory``), and
its peak saved bytes are divided by ``e2e``'s at the same L. No training: the
counts are exact and do not depend on the machine.

Example:
    >>> from locallearn import data
    >>> rows = memory_rows(data.load("synthetic"), depths=(1, 2), width=16, batch_size=8, rules_=("e2e", "local"))
    >>> [(r["label"], r["layers_per_stage"], r["stages"], round(r["saved_ratio"], 2)) for r in rows if r["label"] == "local"]
    [('local', 1, 1, 1.0), ('local', 1, 2, 0.65), ('local', 4, 1, 1.0), ('local', 4, 2, 0.56)]

Each stage must keep its own input for its weight gradient, and under ``e2e``
that input is the previous stage's saved output (one storage, counted once),
so with ``d`` saved activations per stage the ratio cannot go below about
``(d + 1) / (d L + 1)``: 2 / (L + 1) for one layer per stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from locallearn import data as datasets
from locallearn import io, rules
from locallearn.bench.cell import step_memory
from locallearn.provenance import git_revision, load_average
from locallearn.bench.plots import plot_memory
from locallearn.io import write_text
from locallearn.bench.tables import MIB
from locallearn.experiment import RunSpec
from locallearn.heads import make_head
from locallearn.net import LocalNet, Stage
from locallearn.trainer import seed_everything

DEPTHS = (1, 2, 4, 8)
LAYERS_PER_STAGE = (1, 4)


def equal_stage_mlp(input_shape: Sequence[int], num_classes: int, *, stages: int, layers: int, width: int) -> LocalNet:
    """``stages`` stages of ``layers`` x (Linear(width, width) -> ReLU), each with a linear head."""
    blocks = []
    for k in range(stages):
        modules: list[nn.Module] = [nn.Flatten()] if k == 0 else []
        fan_in = math.prod(input_shape) if k == 0 else width
        for _ in range(layers):
            modules += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        blocks.append(nn.Sequential(*modules))
    return LocalNet([Stage(b, make_head("linear", (width,), num_classes)) for b in blocks], input_shape=input_shape)


def _combos(rules_: Sequence[str] | None) -> list[tuple[str, str]]:
    names = list(rules_) if rules_ is not None else rules.names()
    combos = [(r, "simultaneous") for r in sorted(names, key=lambda r: (r != "e2e", r))]
    if "local" in names:
        combos.append(("local", "sequential"))
    return combos


def memory_rows(
    ds: datasets.Dataset,
    *,
    depths: Sequence[int] = DEPTHS,
    width: int | None = None,
    batch_size: int = 128,
    rules_: Sequence[str] | None = None,
    layers_per_stage: Sequence[int] = LAYERS_PER_STAGE,
) -> list[dict[str, Any]]:
    """One row per (L, rule, schedule): peak and total saved bytes, and the peak's ratio to ``e2e``'s."""
    width = width or int(ds.x_train[0].numel())
    rows = []
    for layers in layers_per_stage:
        for depth in depths:
            base = RunSpec(data=ds.name, model="mlp", batch_size=batch_size, epochs=1, progress=False)
            measured = {}
            for rule, schedule in _combos(rules_):
                seed_everything(0)
                net = equal_stage_mlp(ds.input_shape, ds.num_classes, stages=depth, layers=layers, width=width)
                measured[rule, schedule] = step_memory(dataclasses.replace(base, rule=rule, schedule=schedule), ds, net=net)
            e2e = measured[("e2e", "simultaneous")]["saved_bytes_peak"]
            for (rule, schedule), m in measured.items():
                label = rule if schedule == "simultaneous" else f"{rule} ({schedule})"
                rows.append({"layers_per_stage": layers, "stages": depth, "width": width, "batch_size": batch_size,
                             "rule": rule, "schedule": schedule, "label": label, **m,
                             "saved_ratio": m["saved_bytes_peak"] / e2e, "target": 1.3 / depth,
                             "floor": (layers + 1) / (layers * depth + 1)})
    return rows


def memory_markdown(rows: list[dict[str, Any]]) -> str:
    """The memory table: one line per layers-per-stage, rule and schedule; one column per L."""
    depths = sorted({r["stages"] for r in rows})
    lines = ["| layers / stage | rule | " + " | ".join(f"L={d}: peak MiB (× e2e)" for d in depths) + " |",
             "|---|---|" + "---|" * len(depths)]
    for layers in dict.fromkeys(r["layers_per_stage"] for r in rows):
        mine = [r for r in rows if r["layers_per_stage"] == layers]
        for label in dict.fromkeys(r["label"] for r in mine):
            cells = []
            for d in depths:
                r = next(r for r in mine if r["label"] == label and r["stages"] == d)
                mark = "✓" if r["saved_ratio"] <= r["target"] else "✗"
                cells.append(f"{r['saved_bytes_peak'] / MIB:.2f} ({r['saved_ratio']:.3f} {mark})")
            lines.append(f"| {layers} | {label} | " + " | ".join(cells) + " |")
        floor = [next(r["floor"] for r in mine if r["stages"] == d) for d in depths]
        lines.append(f"| {layers} | floor (d+1)/(dL+1) | " + " | ".join(f"{f:.3f}" for f in floor) + " |")
    lines.append("| | target for local: 1.3 / L | " + " | ".join(f"{1.3 / d:.3f}" for d in depths) + " |")
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]], rule: str = "local") -> list[str]:
    """One line per layers-per-stage: at which L ``rule`` under ``simultaneous`` meets the 1.3 / L target."""
    lines = []
    for layers in dict.fromkeys(r["layers_per_stage"] for r in rows):
        mine = [r for r in rows if r["layers_per_stage"] == layers and r["rule"] == rule and r["schedule"] == "simultaneous"]
        met = [r["stages"] for r in mine if r["saved_ratio"] <= r["target"]]
        missed = [f"L={r['stages']}: {r['saved_ratio']:.3f} > {r['target']:.3f} (floor {r['floor']:.3f})"
                  for r in mine if r["saved_ratio"] > r["target"]]
        lines.append(f"- {layers} layer(s) per stage: `{rule}` meets the target at L = {met or 'none'}"
                     + (f"; misses it at {', '.join(missed)}." if missed else "."))
    return lines


def run_memory(*, out: str | Path, data: str = "fashion-mnist", data_dir: str | None = None, command: str = "") -> Path:
    """Measure, then write ``memory.csv``, ``memory.json``, ``results.md`` and ``memory.png`` into ``out``."""
    out = Path(out)
    load_start, date = load_average(), time.strftime("%Y-%m-%d %H:%M:%S %Z")
    rows = memory_rows(datasets.load(data, data_dir=data_dir))
    meta = {"command": command, "git": git_revision(), "machine": io.machine(), "date": date,
            "load_start": load_start, "load_end": load_average(), "data": data}
    io.write_json(out / "memory.json", {"meta": meta, "rows": rows})
    fields = list(rows[0])
    write_text(out / "memory.csv", "\n".join([",".join(fields), *(",".join(str(r[f]) for f in fields) for r in rows)]) + "\n")
    plot_memory(rows, out / "memory.png")
    width, batch = rows[0]["width"], rows[0]["batch_size"]
    text = [
        "# Benchmark suite `memory`: saved-for-backward bytes against the number of stages", "",
        f"MLP of L equal stages, each d x `Linear({width}, {width}) -> ReLU` with a linear head, on {data} "
        f"(28x28 = {width} inputs), one training batch of {batch}. Peak bytes autograd holds for backward during the "
        "step (exact: `saved_tensors_hooks`, unique storages, parameters and buffers excluded); ✓ marks a ratio within "
        "the target 1.3 / L. *floor*: the least a local rule can hold, since each stage keeps its own input for its "
        "weight gradient while under `e2e` that input is the previous stage's saved output (one storage).", "",
        memory_markdown(rows), "",
        *verdicts(rows), "",
        "Under a local rule the engine's `train_step` backpropagates each stage's loss as soon as it is computed "
        "(commit 8d852f7), so only one stage's graph is alive at a time. `saved_bytes_total` in "
        "[memory.csv](memory.csv) is the sum over the step, i.e. what one `backward()` of the summed losses would "
        "hold at its peak.", "",
        "Plot: [memory.png](memory.png).", "",
        "## Provenance", "", f"Command: `{command}`  ", f"Git: `{json.dumps(meta['git'])}`  ", f"Date: {date}  ",
        f"Load 1/5/15 min: {load_start} → {meta['load_end']}  ", f"Machine: `{json.dumps(meta['machine'])}`", "",
    ]
    path = out / "results.md"
    write_text(path, "\n".join(text))
    return path
