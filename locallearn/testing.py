"""Conformance checks that every registered rule, schedule and MI estimator must pass.

Run them on your own rule or schedule before registering it:

Example:
    >>> from locallearn import rules, schedules
    >>> from locallearn.testing import check_rule, check_schedule
    >>> check_rule(rules.create("local"))
    >>> check_schedule(schedules.create("simultaneous"))
"""

from __future__ import annotations

import copy
import inspect

import torch

from locallearn.builders import build_cnn, build_mlp
from locallearn.data import Dataset, load
from locallearn.net import LocalNet
from locallearn.rules.base import LocalRule
from locallearn.schedules.base import Schedule, TrainState, train_step
from locallearn.info.conformance import check_estimator


__all__ = ["check_estimator", "check_rule", "check_schedule"]


def _tiny_net(head: str = "linear", conv: bool = False) -> LocalNet:
    torch.manual_seed(0)
    if conv:
        return build_cnn((1, 4, 4), (4, 4, 4), 4, head=head)
    return build_mlp((16,), (12, 12, 12), 4, head=head)


def _state(net: LocalNet, rule: LocalRule, data: Dataset, conv: bool = False) -> TrainState:
    x = data.x_train[:64]
    if conv:
        x = x.reshape(-1, 1, 4, 4)
    optimizers = [
        torch.optim.SGD(params, lr=0.1) if (params := [p for p in s.parameters() if p.requires_grad]) else None
        for s in net.stages
    ]
    return TrainState(net=net, rule=rule, optimizers=optimizers, x_train=x, y_train=data.y_train[:64], batch_size=32, seed=0)


def check_rule(rule: LocalRule, *, head: str = "linear", conv: bool = False) -> None:
    """Assert the rule contract on a tiny 3-stage net.

    - it is registered under ``rule.name`` and its constructor takes keyword-only
      hyper-parameters that ``get_params`` reads back;
    - a step gives finite losses and changes the trainable parameters of every stage
      that received a loss;
    - a local rule (``detach_inputs``) is local: stage 0's update is the same whether
      or not the later stages are trained in the same step.
    """
    from locallearn.rules import RULES

    assert RULES.get(rule.name) is type(rule), f"{type(rule).__name__} is not registered as {rule.name!r}"
    signature = inspect.signature(type(rule).__init__)
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    assert not positional, f"{type(rule).__name__} hyper-parameters must be keyword-only; got positional {positional}"
    assert set(rule.get_params()) == {p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}

    data = load("synthetic")
    net = _tiny_net(head, conv)
    rule.setup(net)
    alone = copy.deepcopy(net)
    before = [copy.deepcopy(list(s.parameters())) for s in net.stages]
    state = _state(net, rule, data, conv)
    torch.manual_seed(1)  # the same random draws (noise, dropout) in both steps below
    losses = train_step(state, state.x_train[:32], state.y_train[:32], range(3))
    assert all(torch.isfinite(torch.tensor(v)) or v != v for v in losses), f"non-finite losses {losses}"
    for k, (stage, old) in enumerate(zip(net.stages, before)):
        if losses[k] == losses[k]:  # a loss was given (not NaN)
            moved = any(not torch.equal(p, q) for p, q in zip(stage.parameters(), old) if p.requires_grad)
            assert moved, f"rule {rule.name!r}: stage {k} had a loss but none of its trainable parameters changed"
    if rule.detach_inputs:
        # train_step itself refuses a loss that reaches an earlier stage's (freed) graph; this
        # catches the subtler case of a stage's update depending on later stages.
        alone_state = _state(alone, rule, data, conv)
        torch.manual_seed(1)
        train_step(alone_state, alone_state.x_train[:32], alone_state.y_train[:32], [0])
        for p, q in zip(net.stages[0].parameters(), alone.stages[0].parameters()):
            torch.testing.assert_close(p, q, msg=f"rule {rule.name!r} is not local: stage 0 depends on later stages")


def check_schedule(schedule: Schedule, *, rule: LocalRule | None = None) -> None:
    """Assert the schedule contract: an epoch trains the stages it reports, and only those."""
    from locallearn.rules import RULES
    from locallearn.schedules import SCHEDULES

    assert SCHEDULES.get(schedule.name) is type(schedule), f"{type(schedule).__name__} is not registered as {schedule.name!r}"
    rule = rule or RULES.create("local")
    schedule.check(rule)
    net = _tiny_net()
    rule.setup(net)
    state = _state(net, rule, load("synthetic"))
    total = schedule.total_epochs(num_stages=3, epochs=1)
    assert total >= 1
    for epoch in range(total):
        state.epoch = epoch
        before = copy.deepcopy(net.state_dict())
        trained = schedule.train_epoch(state)
        assert trained and all(0 <= k < 3 for k in trained), f"{schedule.name}: bad stage list {trained}"
        for k, stage in enumerate(net.stages):
            changed = any(not torch.equal(v, before[f"stages.{k}.{name}"]) for name, v in stage.state_dict().items())
            assert changed == (k in trained), f"{schedule.name}: stage {k} changed={changed} but trained={trained}"
