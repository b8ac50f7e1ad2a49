"""T7. Progressive linear separability (Belilovsky et al. 2019): under layer-wise training, a linear probe on
``h_k`` is at least as accurate as one on ``h_{k-1}`` (theory/README.md, T7).

Each configuration is trained with the public ``Trainer``; then a logistic regression (scikit-learn,
standardised features) is fitted on the training split's ``h_k`` and scored on the test split, for
``h_0 = x`` and every stage. The exits' own test accuracies are reported beside the probes.

Example:
    >>> rises([0.5, 0.7, 0.69], tolerance=0.01), rises([0.5, 0.7, 0.6], tolerance=0.01)
    (True, False)
    >>> rises([0.70, 0.695, 0.69, 0.685], tolerance=0.01)  # a slow slide counts against the best so far
    False
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import locallearn as ll

from ._claim import Result, verdict_from
from ._data import spirals_dataset

#: A probe may fall by this much (accuracy) from one stage to the next and still count as not falling.
TOLERANCE = 0.01


def rises(accuracies: Sequence[float], *, tolerance: float = TOLERANCE) -> bool:
    """True when no accuracy falls more than ``tolerance`` below the best one before it."""
    return all(accuracies[k] >= max(accuracies[:k]) - tolerance for k in range(1, len(accuracies)))


def probe_accuracy(h_train: torch.Tensor, y_train: torch.Tensor, h_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy of a multinomial logistic regression fitted on ``(h_train, y_train)``."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(h_train.flatten(1).numpy(), y_train.numpy())
    return float(probe.score(h_test.flatten(1).numpy(), y_test.numpy()))


@torch.no_grad()
def stage_features(net: ll.LocalNet, x: torch.Tensor) -> list[torch.Tensor]:
    """``[h_1, ..., h_L]`` in eval mode."""
    net.eval()
    out, h = [], x
    for stage in net.stages:
        h = stage.block(h)
        out.append(h)
    return out


def probe_run(data: ll.data.Dataset, *, rule: str, schedule: str, head: str, epochs: int, num_stages: int = 4,
              width: int = 64, lr: float = 3e-3, seed: int = 0) -> dict:
    """Train one configuration, then probe ``x`` and every ``h_k``. ``schedule`` may be a label of SCHEDULE_OPTIONS."""
    ll.seed_everything(seed)
    net = ll.build_mlp(data.input_shape, (width,) * num_stages, data.num_classes, head=head)
    config = ll.TrainConfig(epochs=epochs, lr=lr, batch_size=64, seed=seed, eval_every=0, progress=False)
    name, options = SCHEDULE_OPTIONS.get(schedule, (schedule, {}))
    trainer = ll.Trainer(net, data, rule=rule, schedule=ll.schedules.create(name, **options), config=config)
    exits = trainer.fit().final("test")
    layers = [data.x_train] + stage_features(net, data.x_train), [data.x_test] + stage_features(net, data.x_test)
    probes = [probe_accuracy(a, data.y_train, b, data.y_test) for a, b in zip(*layers)]
    return {
        "data": data.name, "rule": rule, "schedule": schedule, "head": head, "epochs": epochs,
        "probe_x_then_h1..hL": [round(p, 3) for p in probes], "probes_rise": rises(probes),
        "probe_gain_x_to_hL": round(probes[-1] - probes[0], 3),
        "exits": [round(e, 3) for e in exits], "exits_rise": rises(exits),
    }


#: Schedules with options, by the label the table shows.
SCHEDULE_OPTIONS = {"decoupled, stage 1 at half speed": ("decoupled", {"speeds": (0.5, 1.0, 1.0, 1.0)})}

#: (data, rule, schedule, head, epochs): spirals need depth; digits are linearly separable from the start.
CONFIGS = (
    ("spirals", "local", "sequential", "linear", 50),
    ("spirals", "local", "simultaneous", "linear", 100),
    ("spirals", "local", "simultaneous", "mlp", 100),
    ("spirals", "joint", "simultaneous", "linear", 100),
    ("spirals", "e2e", "simultaneous", "linear", 100),
    ("spirals", "local", "decoupled, stage 1 at half speed", "linear", 100),
    ("spirals", "fa-heads", "simultaneous", "linear", 100),
    ("spirals", "predsim", "simultaneous", "linear", 100),
    ("spirals", "dfa", "simultaneous", "linear", 100),
    ("digits", "local", "simultaneous", "linear", 15),
    ("digits", "local", "simultaneous", "mlp", 15),
)


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    datasets = {"spirals": spirals_dataset(), "digits": ll.data.load("digits")}
    configs = CONFIGS[:2] if fast else CONFIGS
    rows = [probe_run(datasets[d], rule=r, schedule=s, head=h, epochs=e) for d, r, s, h, e in configs]
    held = [row["probes_rise"] for row in rows]
    failing = [f"{r['data']}/{r['rule']}/{r['schedule']}/{r['head']}" for r in rows if not r["probes_rise"]]
    falling_exits = [f"{r['data']}/{r['rule']}/{r['schedule']}/{r['head']}" for r in rows if not r["exits_rise"]]
    flat = [f"{r['data']}/{r['rule']}/{r['schedule']}/{r['head']}" for r in rows if r["probe_gain_x_to_hL"] <= TOLERANCE]
    summary = (
        f"no linear probe falls more than {TOLERANCE} below the best earlier one (x, h_1, ...) in {sum(held)}/{len(held)} "
        f"configurations; probes fall in: {', '.join(failing) or 'none'}; no gain over the input in: "
        f"{', '.join(flat) or 'none'}; the exits themselves fall in: {', '.join(falling_exits) or 'none'}"
    )
    setting = ("MLP 4x64 ReLU, Adam lr 3e-3, batch 64, seed 0 (epochs per stage in the table); probe = standardised "
               "logistic regression fitted on train, scored on test; spirals 600 train / 600 test, digits 1078 / 360")
    return Result("T7", "Progressive linear separability", verdict_from(held), summary, rows, setting,
                  time.process_time() - start)
