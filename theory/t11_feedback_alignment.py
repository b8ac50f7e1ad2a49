"""T11. Feedback alignment (Lillicrap et al. 2016): trained with fixed random feedback ``B``, the forward weights
come to align with ``B``, so the angle between the FA update and the true (backprop) gradient shrinks during
training, from about 90 degrees towards 0 (theory/README.md, T11).

The angle is measured on the whole training split at the current weights: the FA gradient from the
converted model (``locallearn.feedback.convert``), the true gradient from a plain twin holding the same
weights. Both the hidden layers' weight updates and the error signals ``delta_h`` they are made from.

Example:
    >>> angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    45.0
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn import feedback

from ._claim import Result, verdict_from


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between two tensors seen as flat vectors, in degrees."""
    cos = torch.dot(a.flatten().double(), b.flatten().double()) / (a.norm().double() * b.norm().double())
    return round(math.degrees(math.acos(float(cos.clamp(-1.0, 1.0)))), 4)


def gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weight gradients of every linear layer and the error signal at every hidden layer's output (before tanh)."""
    signals, h, pre = [], x, []
    for layer in model:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            h.retain_grad()
            pre.append(h)
    model.zero_grad()
    F.cross_entropy(h, y).backward()
    signals = [p.grad.clone() for p in pre[:-1]]
    return [m.weight.grad.clone() for m in model if isinstance(m, nn.Linear)], signals


def alignment(fa_model: nn.Sequential, twin: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Angles between FA and backprop for each hidden layer (weights ``W_i`` and signals ``delta_h_i``)."""
    twin.load_state_dict(fa_model.state_dict(), strict=False)  # the twin has no feedback buffers
    fa_w, fa_h = gradients(fa_model, x, y)
    bp_w, bp_h = gradients(twin, x, y)
    out = {f"W{i + 1}": angle_degrees(a, b) for i, (a, b) in enumerate(zip(fa_w[:-1], bp_w[:-1]))}
    out.update({f"delta_h{i + 1}": angle_degrees(a, b) for i, (a, b) in enumerate(zip(fa_h, bp_h))})
    return out


def fa_mlp(data: ll.data.Dataset, *, hidden: int = 128, seed: int = 0) -> tuple[nn.Sequential, nn.Sequential]:
    """A plain MLP ``inputs-hidden-hidden-classes`` (tanh) and its FA-converted copy (same initial weights)."""
    torch.manual_seed(seed)
    twin = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(data.input_shape), hidden), nn.Tanh(),
                         nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, data.num_classes))
    return twin, feedback.convert(copy.deepcopy(twin), mode="fa")


def train_and_measure(data: ll.data.Dataset, *, hidden: int = 128, epochs: int = 20, lr: float = 0.05,
                      seed: int = 0) -> list[dict]:
    """SGD on an FA-converted MLP ``64-hidden-hidden-10`` (tanh); the angles at the start and after every epoch."""
    twin, model = fa_mlp(data, hidden=hidden, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = data.x_train, data.y_train
    rows = [{"epoch": 0, **alignment(model, twin, x, y)}]
    g = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        for batch in torch.randperm(len(x), generator=g).split(32):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
        rows.append({"epoch": epoch, **alignment(model, twin, x, y), "test_acc": round(accuracy, 4)})
    return rows


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    data = ll.data.load("digits")
    seeds = (0,) if fast else (0, 1, 2)
    epochs = 10 if fast else 20
    table, held = [], []
    for seed in seeds:
        rows = train_and_measure(data, epochs=epochs, seed=seed)
        first, last = rows[0], rows[-1]
        keys = [k for k in first if k != "epoch"]
        held.append(all(last[k] < first[k] - 10 and last[k] < 90 for k in keys))
        table.append({"seed": seed, **{f"{k} start -> end": f"{first[k]:.1f} -> {last[k]:.1f}" for k in keys},
                      "min over training": {k: min(r[k] for r in rows) for k in keys}, "test_acc": last["test_acc"]})
    summary = (f"every hidden layer's FA update ends at least 10 degrees closer to the true gradient than it started "
               f"(and below 90) in {sum(held)}/{len(held)} seeds")
    setting = (f"digits, MLP 64-128-128-10 tanh converted with feedback.convert(mode='fa'), SGD lr 0.05, batch 32, "
               f"{epochs} epochs; angles on the full training split (1078)")
    return Result("T11", "Feedback alignment: the update aligns with the gradient", verdict_from(held), summary, table,
                  setting, time.process_time() - start)
