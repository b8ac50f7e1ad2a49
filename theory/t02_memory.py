"""T2. Memory: a local rule keeps one stage's activations alive, so its peak of saved-for-backward bytes over
end-to-end backprop is ``(m + 1) / (m L + 1)`` for ``L`` stages of ``m`` layers (theory/README.md, T2).

Example:
    >>> abs(peak_ratio(num_stages=2, layers_per_stage=1) - 2 / 3) < 0.02
    True
"""

from __future__ import annotations

import time

import torch
from torch import nn

import locallearn as ll
from locallearn.schedules import TrainState, train_step

from ._claim import FAILS, HOLDS, Result


class LiveSavedBytes:
    """Peak bytes of distinct storages saved for backward and alive at once (parameters excluded).

    A storage saved by two operations (a ReLU's output that is also the next Linear's
    input) counts once; it stops counting when the last graph holding it is freed.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.exclude, self.refs, self.sizes = exclude, {}, {}
        self.live = self.peak = 0

    def pack(self, tensor: torch.Tensor) -> "_Held":
        return _Held(self, tensor)

    @staticmethod
    def unpack(held: "_Held") -> torch.Tensor:
        return held.tensor

    def add(self, key: int, size: int) -> None:
        if key in self.exclude:
            return
        if self.refs.get(key, 0) == 0:
            self.live += size
            self.sizes[key] = size
            self.peak = max(self.peak, self.live)
        self.refs[key] = self.refs.get(key, 0) + 1

    def remove(self, key: int) -> None:
        if key in self.exclude:
            return
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.live -= self.sizes[key]


class _Held:
    def __init__(self, meter: LiveSavedBytes, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        self.meter, self.tensor, self.key = meter, tensor, storage.data_ptr()
        meter.add(self.key, storage.nbytes())

    def __del__(self) -> None:
        self.meter.remove(self.key)


def _equal_stages(num_stages: int, layers_per_stage: int, width: int = 256) -> ll.LocalNet:
    torch.manual_seed(0)
    stages = []
    for _ in range(num_stages):
        block = nn.Sequential(*[m for _ in range(layers_per_stage) for m in (nn.Linear(width, width), nn.ReLU())])
        stages.append(ll.Stage(block, nn.Linear(width, 10)))
    return ll.LocalNet(stages)


def peak_saved(rule: str, num_stages: int, layers_per_stage: int) -> int:
    """Peak live saved-for-backward bytes of one ``train_step`` of ``rule`` (batch 64, width 256)."""
    net = _equal_stages(num_stages, layers_per_stage)
    state = TrainState(net=net, rule=ll.rules.create(rule), optimizers=[None] * num_stages,
                       x_train=torch.randn(64, 256), y_train=torch.randint(0, 10, (64,)), batch_size=64, seed=0)
    meter = LiveSavedBytes({p.untyped_storage().data_ptr() for p in net.parameters()})
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        train_step(state, state.x_train, state.y_train, range(num_stages))
    return meter.peak


def peak_ratio(*, num_stages: int, layers_per_stage: int) -> float:
    """``local``'s peak over ``e2e``'s."""
    return peak_saved("local", num_stages, layers_per_stage) / peak_saved("e2e", num_stages, layers_per_stage)


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    rows = []
    for m in (1, 4):
        for n in (1, 2, 4, 8):
            measured, formula = peak_ratio(num_stages=n, layers_per_stage=m), (m + 1) / (m * n + 1)
            rows.append({"L": n, "m": m, "measured": round(measured, 4), "(m+1)/(mL+1)": round(formula, 4),
                         "relative_error": round(abs(measured / formula - 1), 4)})
    held = all(r["relative_error"] <= 0.02 for r in rows)
    summary = (f"measured peak ratio within {max(r['relative_error'] for r in rows):.2%} of (m+1)/(mL+1) in every case "
               f"(the heads' softmax outputs make the rest)")
    return Result("T2", "Memory of a local rule", HOLDS if held else FAILS, summary, rows,
                  "L equal stages of m Linear(256)-ReLU layers, batch 64, one train_step, saved_tensors_hooks",
                  time.process_time() - start)
