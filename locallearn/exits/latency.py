"""Cost tables in measured wall time: seconds per sample of every block and head, on this machine, at a batch size.

FLOPs miss what costs time on a CPU (BatchNorm, ReLU and pooling on the
largest maps, memory traffic), so a FLOP-calibrated early exit can promise
2x and deliver 1.2x. A latency table is a :class:`CostTable` whose unit is
seconds per sample, measured by running every block and head of the network
(eval mode, inference mode, the same thread count as the caller) on a batch
stream of the given batch size. It plugs into everything that takes a cost
table: calibration (``sweep``, ``for_budget``, ``for_latency_budget``), the
cascaded cost (eq. 12), the placement condition (eq. 4) and the report.

Timing protocol: every module runs every batch of the stream ``rounds`` times,
taking turns with the other modules, and the fastest run of each batch is
kept (other jobs on a shared machine only ever add time); the per-sample cost
is the sum over batches divided by the number of samples.

:func:`compare_speedup` puts the table's prediction beside a measurement:
predicted speed-up = ``C_full / mean_i C_{exit_i}`` from the table and the
exits taken, measured = time of the full network / time of the early-exit
runner on the same batches (the same protocol, the two taking turns).

Example:
    >>> import torch
    >>> from locallearn import build_mlp
    >>> net = build_mlp((8,), (16, 16), 3)
    >>> table = stage_latency(net, torch.randn(64, 8), batch_size=32, rounds=2)
    >>> table.unit, table.n_exits, all(t > 0 for t in table.blocks)
    ('s', 2, True)
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .._params import check_number
from .cost import CostTable, per_sample_cost
from .runner import EarlyExitRunner, _eval_mode, _stages, run_full
from .thresholds import Thresholds


def _per_batch_fastest(fns: dict[Any, Callable[[torch.Tensor], Any]], streams: dict[Any, list[torch.Tensor]], rounds: int) -> dict[Any, float]:
    """Per method, the sum over its batches of the fastest of ``rounds`` wall-clock runs of that batch. The
    methods take turns on every batch and round, so a slow moment of a shared machine hits all of them, and
    a batch has to be slowed in every round to count slow."""
    best = {name: [float("inf")] * len(streams[name]) for name in fns}
    for _ in range(rounds):
        for i in range(max(len(v) for v in streams.values())):
            for name, fn in fns.items():
                if i < len(streams[name]):
                    start = time.perf_counter()
                    fn(streams[name][i])
                    best[name][i] = min(best[name][i], time.perf_counter() - start)
    return {name: sum(times) for name, times in best.items()}


def _check(x: torch.Tensor, batch_size: int, rounds: int, owner: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner} needs a batch of inputs x of shape [samples, ...] with at least one sample. Got {got} instead.")
    check_number(batch_size, name="batch_size", owner=owner, low=1, integer=True)
    check_number(rounds, name="rounds", owner=owner, low=1, integer=True)


@torch.inference_mode()
def stage_latency(net: Any, x: torch.Tensor, *, batch_size: int = 256, rounds: int = 5) -> CostTable:
    """Measured seconds per sample of every block and head of ``net`` (a LocalNet) over ``x`` cut into
    batches of ``batch_size``; per module and batch the fastest of ``rounds`` runs is kept."""
    _check(x, batch_size, rounds, "stage_latency")
    stages = _stages(net)
    with _eval_mode(stages):
        inputs = [list(x.split(batch_size))]
        for stage in stages:  # every stage's input stream, computed once
            inputs.append([stage.block(h) for h in inputs[-1]])
        fns = {("block", k): s.block for k, s in enumerate(stages)} | {("head", k): s.head for k, s in enumerate(stages)}
        streams = {("block", k): inputs[k] for k in range(len(stages))} | {("head", k): inputs[k + 1] for k in range(len(stages))}
        best = _per_batch_fastest(fns, streams, rounds)
    blocks = [best["block", k] / len(x) for k in range(len(stages))]
    heads = [best["head", k] / len(x) for k in range(len(stages))]
    return CostTable(blocks=tuple(blocks), heads=tuple(heads), unit="s")


def latency_tables(net: Any, x: torch.Tensor, batch_sizes: Sequence[int] = (1, 256), *, rounds: int = 5) -> dict[int, CostTable]:
    """One latency table per batch size (the per-sample cost of a block depends on the batch size)."""
    return {int(b): stage_latency(net, x, batch_size=int(b), rounds=rounds) for b in batch_sizes}


@torch.inference_mode()
def layer_latency(layers: Sequence[nn.Module], x: torch.Tensor, *, batch_size: int = 256, rounds: int = 5) -> list[float]:
    """Measured seconds per sample of each layer of a sequential stack (for ``place_exits`` in time units)."""
    _check(x, batch_size, rounds, "layer_latency")
    modes = [m.training for m in layers]
    for m in layers:
        m.eval()
    try:
        stream, times = list(x.split(batch_size)), []
        for layer in layers:
            times.append(_per_batch_fastest({"layer": layer}, {"layer": stream}, rounds)["layer"] / len(x))
            stream = [layer(h) for h in stream]
    finally:
        for m, mode in zip(layers, modes):
            m.train(mode)
    return times


def compare_speedup(
    net: Any, thresholds: Thresholds, x: torch.Tensor, costs: CostTable, *, batch_size: int = 256, rounds: int = 5
) -> dict[str, float]:
    """Predicted (from ``costs`` and the exits the runner takes on ``x``) against measured wall-clock speed-up
    of the early-exit runner over the full network, at ``batch_size``.

    The full network and the runner take turns on every batch, ``rounds`` times; the fastest run of each
    batch is kept. Returns seconds per sample of both, both speed-ups and ``measured / predicted``.
    """
    _check(x, batch_size, rounds, "compare_speedup")
    runner = EarlyExitRunner(net, thresholds)
    batches = list(x.split(batch_size))
    exits = torch.cat([runner.run(xb).exit for xb in batches])
    predicted = costs.full / float(per_sample_cost(exits, costs).mean())
    fns = {"full": lambda xb: run_full(net, xb), "early_exit": runner.run}
    best = _per_batch_fastest(fns, dict.fromkeys(fns, batches), rounds)
    measured = best["full"] / best["early_exit"]
    return {
        "batch_size": batch_size,
        "samples": len(x),
        "full_s_per_sample": best["full"] / len(x),
        "early_exit_s_per_sample": best["early_exit"] / len(x),
        "predicted_speedup": predicted,
        "measured_speedup": measured,
        "measured_over_predicted": measured / predicted,
        "exit_fractions": torch.bincount(exits, minlength=len(costs.blocks)).div(len(x)).tolist(),
    }
