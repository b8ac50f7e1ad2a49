"""Multi-tier deployment (survey sec. 7.2, Fig. 5; DDNN, Teerapittayanon et al. 2017): stages on tiers
(device, edge, cloud), each with its compute speed, joined by links with a bandwidth and a latency.

A sample starts on tier 0 (the device, where the data is). Stage k runs on tier
``a_k`` (non-decreasing in k: samples only move up). Before block k runs, its
input (``x`` for k = 0, else ``h_{k-1}``) crosses every link between
``a_{k-1}`` and ``a_k`` (``a_{-1} = 0``); each crossing costs
``bytes / bandwidth + latency`` seconds. So, per sample,

* block cost ``b'_k = b_k / speed(a_k) + sum_{links crossed before k} (B_in(k) / bandwidth + latency)``;
* head cost ``h'_k = h_k / speed(a_k)``;
* bytes sent by a sample leaving at exit k: ``S_k = sum_{j<=k} n_j B_in(j)`` with ``n_j`` the links
  crossed before stage j and ``B_in(j)`` the bytes of stage j's input.

``b_k, h_k`` come from any :class:`CostTable` (FLOPs, with ``speed`` in FLOP/s;
or a measured latency table in seconds, with ``speed`` relative to the measuring
machine). :meth:`TierPlan.cost_table` returns a table in seconds, so the
cascaded cost (eq. 12, ``expected_cost``), the placement condition (eq. 4,
``exit_gains``) and calibration to a latency budget (``for_latency_budget``)
work with these costs unchanged. Latency is charged per sample (batch-1
serving). The answer's trip back down is not counted (a few bytes).
:class:`~locallearn.exits.EarlyExitRunner` with ``tiers=`` counts the bytes
it really hands from tier to tier.

Example:
    >>> plan = TierPlan(
    ...     tiers=(Tier("device", speed=1e9), Tier("edge", speed=1e10), Tier("cloud", speed=1e11)),
    ...     links=(Link(bandwidth=1e6, latency=0.005), Link(bandwidth=1e7, latency=0.02)),
    ...     assignment=(0, 1, 2),
    ... )
    >>> table = plan.cost_table(CostTable(blocks=(1e6, 1e8, 1e8), heads=(1e4, 1e4, 1e4)), input_bytes=3136, feature_bytes=(4096, 4096, 4096))
    >>> [round(b * 1e3, 3) for b in table.blocks]   # ms: 1 ms on the device; 10 ms + 4.1 ms + 5 ms; 1 ms + 0.4 ms + 20 ms
    [1.0, 19.096, 21.41]
    >>> plan.bytes_per_exit(input_bytes=3136, feature_bytes=(4096, 4096, 4096)).tolist()
    [0.0, 4096.0, 8192.0]
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from .._params import check_number
from .cost import CostTable


@dataclasses.dataclass(frozen=True)
class Tier:
    """A computing tier: ``speed`` in cost units per second (FLOP/s for a FLOPs table; 1.0 = the measuring machine
    for a latency table)."""

    name: str
    speed: float

    def __post_init__(self) -> None:
        check_number(self.speed, name="speed", owner=f"Tier {self.name!r}", low=0.0, low_inclusive=False)


@dataclasses.dataclass(frozen=True)
class Link:
    """The link from one tier to the next: ``bandwidth`` in bytes per second, ``latency`` in seconds per transfer."""

    bandwidth: float
    latency: float = 0.0

    def __post_init__(self) -> None:
        check_number(self.bandwidth, name="bandwidth", owner="Link", low=0.0, low_inclusive=False)
        check_number(self.latency, name="latency", owner="Link", low=0.0)


@dataclasses.dataclass(frozen=True)
class TierPlan:
    """Tiers, the links between neighbours (``links[i]`` joins ``tiers[i]`` and ``tiers[i+1]``) and the tier of
    every stage (``assignment``, non-decreasing)."""

    tiers: tuple[Tier, ...]
    links: tuple[Link, ...]
    assignment: tuple[int, ...]

    def __post_init__(self) -> None:
        tiers, links, assignment = tuple(self.tiers), tuple(self.links), tuple(self.assignment)
        if not tiers or not all(isinstance(t, Tier) for t in tiers):
            raise ValueError(f"TierPlan needs at least one Tier. Got {self.tiers!r} instead.")
        if len(links) != len(tiers) - 1 or not all(isinstance(link, Link) for link in links):
            raise ValueError(f"TierPlan needs one Link between each pair of neighbouring tiers ({len(tiers) - 1}). Got {self.links!r} instead.")
        ok = assignment and all(isinstance(a, int) and 0 <= a < len(tiers) for a in assignment)
        if not ok or any(b < a for a, b in zip(assignment, assignment[1:])):
            raise ValueError(
                f"TierPlan.assignment must give every stage a tier index in 0..{len(tiers) - 1}, non-decreasing "
                f"(samples only move up). Got {self.assignment!r} instead."
            )
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "assignment", assignment)

    @property
    def n_stages(self) -> int:
        return len(self.assignment)

    def links_before(self, stage: int) -> tuple[Link, ...]:
        """The links stage ``stage``'s input crosses before its block runs."""
        start = 0 if stage == 0 else self.assignment[stage - 1]
        return self.links[start : self.assignment[stage]]

    def _input_bytes(self, input_bytes: float, feature_bytes: Sequence[float]) -> list[float]:
        if len(feature_bytes) != self.n_stages:
            raise ValueError(f"TierPlan has {self.n_stages} stages; feature_bytes needs one size per stage. Got {len(feature_bytes)} instead.")
        return [float(input_bytes)] + [float(b) for b in feature_bytes[:-1]]

    def bytes_per_exit(self, *, input_bytes: float, feature_bytes: Sequence[float]) -> torch.Tensor:
        """``S_k``: bytes sent across links by one sample that leaves at exit k."""
        sent = [len(self.links_before(k)) * b for k, b in enumerate(self._input_bytes(input_bytes, feature_bytes))]
        return torch.tensor(sent, dtype=torch.float64).cumsum(0)

    def cost_table(self, compute: CostTable, *, input_bytes: float, feature_bytes: Sequence[float]) -> CostTable:
        """Per-sample seconds of every block (its compute on its tier plus the transfers before it) and head."""
        if compute.n_exits != self.n_stages:
            raise ValueError(f"TierPlan has {self.n_stages} stages; got a CostTable for {compute.n_exits} exits.")
        sizes = self._input_bytes(input_bytes, feature_bytes)
        blocks, heads = [], []
        for k, (b, h) in enumerate(zip(compute.blocks, compute.heads)):
            speed = self.tiers[self.assignment[k]].speed
            transfer = sum(sizes[k] / link.bandwidth + link.latency for link in self.links_before(k))
            blocks.append(b / speed + transfer)
            heads.append(h / speed)
        return CostTable(blocks=tuple(blocks), heads=tuple(heads), unit="s")

    def describe(self) -> dict[str, Any]:
        """JSON-ready: tiers, links and assignment."""
        return dataclasses.asdict(self)


@torch.inference_mode()
def feature_bytes(net: Any, input_shape: Sequence[int], *, dtype: torch.dtype = torch.float32) -> tuple[int, list[int]]:
    """Bytes per sample of the input and of every block's output ``h_k`` of ``net`` (sent as ``dtype``)."""
    size = torch.empty((), dtype=dtype).element_size()
    h = torch.zeros(1, *input_shape)
    out = []
    modes = [s.block.training for s in net.stages]
    try:
        for stage in net.stages:
            stage.block.eval()
            h = stage.block(h)
            out.append(h[0].numel() * size)
    finally:
        for stage, mode in zip(net.stages, modes):
            stage.block.train(mode)
    return int(torch.Size(input_shape).numel()) * size, out
