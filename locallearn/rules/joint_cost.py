"""``joint-cost``: deep supervision plus the survey's soft cost (eq. 13-14) as a trainable penalty.

Survey eq. 13-14: with a differentiable exit confidence ``c_k`` per exit, the
probability that a sample leaves at exit k is
``P_k = c_k * prod_{j<k} (1 - c_j)`` (the last exit takes what is left), and
the expected relative cost is ``E = mean_n sum_k P_k(n) C_k / C_full``, with
``C_k`` the cascaded cost of leaving at k (eq. 12). Here
``c_k = sigmoid((max softmax(z_k) - q) / tau)``, a smooth max-prob exit with
threshold ``q``, and the loss is

    L = sum_k w_k CE(z_k, y) + penalty * E,

backpropagated end to end like ``joint``. ``C_k`` are the FLOPs of the
network's blocks and heads, counted at the first step from the shape of its
input, unless ``costs`` (a ``CostTable``, e.g. a measured latency table) is
given. The penalty needs every exit's logits of the step, so it is added to
the last exit's loss; a step that trains only some stages is refused.

Example:
    >>> from locallearn import rules
    >>> rules.create("joint-cost", penalty=0.5).get_params()["penalty"]
    0.5
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch

from locallearn._params import check_number
from locallearn.exits.cost import CostTable, soft_cost_penalty, stage_costs
from locallearn.net import LocalNet
from locallearn.rules._step_exits import StepExits
from locallearn.rules.base import RULES, StageOutput
from locallearn.rules.joint import JointSupervision


@RULES.register("joint-cost")
class JointCostPenalty(JointSupervision):
    """Deep supervision plus ``penalty`` x the soft expected relative cost of the exits (survey eq. 13-14).

    See the module docstring for the loss and its options.

    Source: Lee et al., AISTATS 2015 (deep supervision) plus the early-exit survey's soft expected cost (eq. 13-14); no authors' code.
    """

    source = "Lee et al., AISTATS 2015 (deep supervision) plus the early-exit survey's soft expected cost (eq. 13-14); no authors' code"

    sequence_labels = False  # its exit costs are per sample, not per position

    def __init__(
        self, *, weights: Sequence[float] | None = None, penalty: float = 0.1, threshold: float = 0.9,
        temperature: float = 0.05, costs: CostTable | None = None,
    ) -> None:
        super().__init__(weights=weights)
        owner = "JointCostPenalty"
        self.penalty = check_number(penalty, name="penalty", owner=owner, low=0.0)
        self.threshold = check_number(threshold, name="threshold", owner=owner, low=0.0, high=1.0)
        self.temperature = check_number(temperature, name="temperature", owner=owner, low=0.0, low_inclusive=False)
        if costs is not None and not isinstance(costs, CostTable):
            raise ValueError(f"The 'costs' parameter of JointCostPenalty must be a CostTable or None. Got {costs!r} instead.")
        self.costs = costs
        # a weak reference: the rule (kept per net by locallearn.prepare) must not keep its net alive
        self._net: weakref.ref[LocalNet] | None = None
        self._table: CostTable | None = costs
        self._step = StepExits("joint-cost", "its penalty couples them")

    def setup(self, net: LocalNet) -> None:
        self.bind(net)

    def bind(self, net: LocalNet) -> None:
        self._net = weakref.ref(net)

    def __getstate__(self) -> dict:  # a pickle (a spawned worker) carries the net itself
        return {**self.__dict__, "_net": None if self._net is None else self._net()}

    def __setstate__(self, state: dict) -> None:
        net = state.pop("_net")
        self.__dict__.update(state, _net=None if net is None else weakref.ref(net))

    def _cost_table(self, x: torch.Tensor) -> CostTable:
        if self._table is None:
            net = None if self._net is None else self._net()
            if net is None:
                raise RuntimeError("JointCostPenalty needs setup(net) before the first step (locallearn.prepare does it), or costs=.")
            self._table = stage_costs([s.block for s in net.stages], [s.head for s in net.stages], tuple(x.shape[1:]))
        return self._table

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        loss = super().stage_loss(out, y)
        if out.index == 0:
            self._cost_table(out.h_in)
        if self.penalty == 0:
            return loss
        exits = self._step.add(out, out.logits, complete=self._table is not None)
        if exits is None:
            return loss
        if self._table.n_exits != out.index + 1:
            raise ValueError(f"JointCostPenalty got a CostTable for {self._table.n_exits} exits; the network has {out.index + 1}.")
        penalty = soft_cost_penalty([exits[k] for k in range(out.index + 1)], self._table, threshold=self.threshold, temperature=self.temperature)
        return loss + self.penalty * penalty.to(loss.dtype)
