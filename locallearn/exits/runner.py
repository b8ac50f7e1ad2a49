"""A real early-exit runner: in a batch, samples that exit stop; only the rest go through later blocks.

The network is anything with ``.stages``, each stage having ``.block`` and
``.head`` (a ``LocalNet``); nothing of the training engine is imported. At
stage k the runner applies block k and head k to the rows still running, asks
the policy for the sureness of those rows from the exits they have run so far
(the policy is causal, so this equals the offline decision), and keeps only
the rows that stay. With ``count_flops=True`` every block and head call is
counted by ``FlopCounterMode`` and its FLOPs shared equally by the rows it
processed, giving the FLOPs each sample actually cost. With ``tiers=`` (a
:class:`~locallearn.exits.tiers.TierPlan`) it counts, per sample, the bytes of
the tensors it hands across each tier boundary (only the rows still running
are sent).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from types import SimpleNamespace as NS
    >>> net = NS(stages=[NS(block=nn.Linear(4, 8), head=nn.Linear(8, 3)), NS(block=nn.Linear(8, 8), head=nn.Linear(8, 3))])
    >>> from locallearn.exits import Thresholds
    >>> out = EarlyExitRunner(net, Thresholds.fixed("max-prob", [0.0]), count_flops=True).run(torch.zeros(5, 4))
    >>> out.exit.tolist(), out.flops.tolist()
    ([0, 0, 0, 0, 0], [112.0, 112.0, 112.0, 112.0, 112.0])
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..heads_cascade import head_logits

from .cost import CostTable, per_sample_cost
from .thresholds import Thresholds
from .tiers import TierPlan


@dataclasses.dataclass(frozen=True)
class RunOutput:
    """Per sample: the prediction, the exit taken, the FLOPs spent (``None`` if not counted) and the bytes
    sent between tiers (``None`` without a tier plan)."""

    prediction: torch.Tensor
    exit: torch.Tensor
    flops: torch.Tensor | None
    bytes_sent: torch.Tensor | None = None


def _stages(net: Any) -> list[Any]:
    stages = getattr(net, "stages", None)
    if stages is None or not all(hasattr(s, "block") and hasattr(s, "head") for s in stages):
        raise TypeError(f"EarlyExitRunner needs a network with .stages, each with .block and .head (a LocalNet). Got {type(net).__name__} instead.")
    return list(stages)


@contextlib.contextmanager
def _eval_mode(stages: list[Any]) -> Iterator[None]:
    modules = [m for s in stages for m in (s.block, s.head)]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


class EarlyExitRunner:
    """Run ``net`` with early exits under ``thresholds`` (its policy and per-exit values).

    ``costs`` (optional) fills ``RunOutput.flops`` from the cost table when FLOPs are not counted;
    ``tiers`` (optional) places the stages on tiers and fills ``RunOutput.bytes_sent``.
    """

    def __init__(
        self, net: Any, thresholds: Thresholds, *, count_flops: bool = False, costs: CostTable | None = None,
        tiers: TierPlan | None = None,
    ) -> None:
        self.stages = _stages(net)
        if len(thresholds.values) != len(self.stages) - 1:
            raise ValueError(
                f"EarlyExitRunner needs {len(self.stages) - 1} thresholds for a network with {len(self.stages)} exits. "
                f"Got {len(thresholds.values)} instead."
            )
        self.net = net
        self.thresholds = thresholds
        self.count_flops = count_flops
        self.costs = costs
        if tiers is not None and tiers.n_stages != len(self.stages):
            raise ValueError(f"EarlyExitRunner got a TierPlan for {tiers.n_stages} stages; the network has {len(self.stages)}.")
        self.tiers = tiers

    def _call(self, module: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor, flops: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
        if flops is None:
            return module(h)
        with FlopCounterMode(display=False) as counter:
            out = module(h)
        flops[rows] += counter.get_total_flops() / len(rows)
        return out

    @torch.inference_mode()
    def run(self, x: torch.Tensor) -> RunOutput:
        """Predictions, exits and FLOPs for the batch ``x`` (any batch size >= 1)."""
        with _eval_mode(self.stages):
            return self._run(x)

    def _run(self, x: torch.Tensor) -> RunOutput:
        n, last = x.shape[0], len(self.stages) - 1
        policy, values = self.thresholds.policy, self.thresholds.values
        prediction = torch.empty(n, dtype=torch.long)
        exit_index = torch.full((n,), last, dtype=torch.long)
        flops = torch.zeros(n, dtype=torch.float64) if self.count_flops else None
        sent = torch.zeros(n, dtype=torch.float64) if self.tiers is not None else None
        alive = torch.arange(n)
        h, history = x, []
        for k, stage in enumerate(self.stages):
            if sent is not None:
                sent[alive] += len(self.tiers.links_before(k)) * h.numel() * h.element_size() / len(alive)
            h = self._call(stage.block, h, flops, alive)
            head = functools.partial(head_logits, stage.head, previous=history[-1] if history else None)
            history.append(self._call(head, h, flops, alive))
            if k == last:
                leave = torch.ones(len(alive), dtype=torch.bool)
            else:
                leave = policy.last_sureness(history) >= values[k]
                if not leave.any():
                    continue
            output = policy.last_outputs(history).argmax(-1)
            prediction[alive[leave]] = output[leave]
            exit_index[alive[leave]] = k
            stay = ~leave
            if not stay.any():
                break
            alive, h = alive[stay], h[stay]
            history = [z[stay] for z in history]
        if flops is None and self.costs is not None:
            flops = per_sample_cost(exit_index, self.costs)
        return RunOutput(prediction, exit_index, flops, sent)


@torch.inference_mode()
def run_full(net: Any, x: torch.Tensor) -> torch.Tensor:
    """The baseline without early exits: every block, then only the last head; returns predictions."""
    stages = _stages(net)
    h = x
    with _eval_mode(stages):
        for stage in stages:
            h = stage.block(h)
        return stages[-1].head(h).argmax(-1)
