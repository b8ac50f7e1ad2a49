"""``freezeout``: freezing points and eq. 10 written out, frozen stages neither updated nor run, the cache is
only a shortcut (same result as recomputing the frozen blocks), and the schedule contract."""

import copy
import math

import pytest
import torch

from locallearn import build_mlp, data, rules, schedules, seed_everything
from locallearn.data.batches import LoaderBatches
from locallearn.schedules import Freezeout, TrainState
from locallearn.testing import check_schedule


def test_freezing_points_are_brock_et_al_s():
    assert Freezeout(t0=0.5).freezing_points(5) == pytest.approx([0.5, 0.625, 0.75, 0.875, 1.0])  # equispaced
    t0 = 0.8
    cubic = [(t0 + (1 - t0) * i / 3) ** 3 for i in range(4)]
    assert Freezeout(t0=t0, spacing="cubic").freezing_points(4) == pytest.approx(cubic)
    assert Freezeout(t0=t0, spacing="squared").freezing_points(2) == pytest.approx([0.64, 1.0])
    assert Freezeout().freezing_points(1) == [1.0]


@pytest.mark.parametrize("scale_lr", [False, True])
def test_learning_rates_follow_eq_10(scale_lr):
    schedule = Freezeout(t0=0.4, scale_lr=scale_lr)
    points = [0.4, 0.7, 1.0]
    for t in (0.0, 0.1, 0.39, 0.4, 0.55, 0.99):
        expected = [0.5 * (0.01 / p if scale_lr else 0.01) * (1 + math.cos(math.pi * t / p)) if t < p else 0.0 for p in points]
        assert schedule.learning_rates(0.01, t, 3) == pytest.approx(expected)


def make_state(rule="joint", epochs=2, loader=False):
    ds = data.load("synthetic")
    seed_everything(0)
    net = build_mlp((16,), (12, 12, 12), 4)
    rule = rules.create(rule)
    rule.setup(net)
    optimizers = [torch.optim.SGD(s.parameters(), lr=0.1) for s in net.stages]
    x, y = ds.x_train[:128], ds.y_train[:128]
    source = None
    if loader:
        tensors = torch.utils.data.TensorDataset(x, y)
        source = LoaderBatches(torch.utils.data.DataLoader(tensors, batch_size=16, shuffle=False))
    return TrainState(net=net, rule=rule, optimizers=optimizers, x_train=x, y_train=y, batch_size=16, seed=0, epochs=epochs, source=source)


def run(state, schedule):
    """Every epoch; per iteration the learning rates set and the stages stepped."""
    history = []
    for k, opt in enumerate(state.optimizers):
        step = opt.step

        def counted(*a, k=k, step=step, **kw):
            history[-1]["stepped"].append(k)
            return step(*a, **kw)

        opt.step = counted
    original = schedule._set_rates

    def recorded(state_, t):
        active = original(state_, t)
        history.append({"t": t, "lr": [o.param_groups[0]["lr"] for o in state_.optimizers], "active": active, "stepped": []})
        return active

    schedule._set_rates = recorded
    snapshots = {}
    for epoch in range(state.epochs):
        state.epoch = epoch
        schedule.train_epoch(state)
        snapshots[epoch] = copy.deepcopy(state.net.state_dict())
    return history, snapshots


def test_frozen_stages_stop_learning_at_their_freezing_point():
    state = make_state(epochs=2)
    schedule = Freezeout(t0=0.5)
    history, _ = run(state, schedule)
    assert len(history) == 2 * 8  # 128 samples in batches of 16, 2 epochs
    for j, it in enumerate(history):
        t = j / 16
        assert it["t"] == pytest.approx(t)
        assert it["stepped"] == [k for k, p in enumerate([0.5, 0.75, 1.0]) if t < p]
        assert it["lr"] == pytest.approx(schedule.learning_rates(0.1, t, 3))


def test_a_frozen_block_is_neither_updated_nor_run_forward_once_cached():
    state = make_state(epochs=2)
    calls = []
    block0 = state.net.stages[0].block
    block0.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    before = None
    schedule = Freezeout(t0=0.5)
    for epoch in range(2):
        state.epoch = epoch
        schedule.train_epoch(state)
        if epoch == 0:
            before = copy.deepcopy(block0.state_dict())
    # epoch 0: 8 training batches of 16; stage 0 freezes at t = 0.5 (start of epoch 1): one pass of the
    # training set in chunks of the batch size fills the cache, then block 0 never runs again
    assert calls == [16] * 8 + [16] * 8
    for name, value in block0.state_dict().items():
        assert torch.equal(value, before[name])


def test_the_cache_is_only_a_shortcut():
    cached, recomputed, streamed = make_state(), make_state(), make_state(loader=True)
    run(cached, Freezeout(t0=0.3, spacing="cubic"))
    run(recomputed, Freezeout(t0=0.3, spacing="cubic", cache=False))
    assert isinstance(streamed.source, LoaderBatches)
    for a, b in zip(cached.net.parameters(), recomputed.net.parameters()):
        torch.testing.assert_close(a, b)
    # a loader is never cached; the same schedule still trains it
    history, _ = run(streamed, Freezeout(t0=0.3, spacing="cubic"))
    assert history[-1]["stepped"] == [2]


def test_contract_and_registry():
    check_schedule(schedules.create("freezeout"))
    check_schedule(schedules.create("freezeout", t0=0.6, spacing="cubic", scale_lr=True), rule=rules.create("joint"))
    with pytest.raises(ValueError, match="'spacing' parameter of Freezeout"):
        Freezeout(spacing="quartic")
    with pytest.raises(ValueError, match="'t0' parameter of Freezeout"):
        Freezeout(t0=0.0)
