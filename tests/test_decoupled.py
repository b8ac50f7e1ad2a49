"""The ``decoupled`` schedule: its synchronous limit equals ``simultaneous``; buffers; slow stages."""

from __future__ import annotations


import pytest
import torch

import locallearn as ll
from locallearn import rules
from locallearn.schedules.decoupled import Decoupled, ReplayBuffer

LOCAL_RULES = [name for name in rules.names() if rules.RULES.get(name).detach_inputs]


def _trainer(data, schedule, *, rule="local", widths=(16, 16, 16), dropout=0.1, epochs=2, callbacks=(), **config):
    ll.seed_everything(5)
    net = ll.build_mlp(data.input_shape, widths, data.num_classes, dropout=dropout)
    config = ll.TrainConfig(epochs=epochs, batch_size=32, progress=False, eval_every=0, **config)
    return ll.Trainer(net, data, rule=rule, schedule=schedule, config=config, callbacks=callbacks)


def _assert_same_parameters(a, b):
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=f"{name} differs")


def test_synchronous_limit_equals_simultaneous_exactly(synthetic):
    reference = _trainer(synthetic, "simultaneous")
    reference.fit()
    mine = _trainer(synthetic, Decoupled(capacity=1, max_uses=1))
    result = mine.fit()
    _assert_same_parameters(reference, mine)
    batches = -(-len(synthetic.x_train) // 32)
    assert result.history[-1]["updates"] == [batches] * 3
    assert result.history[-1]["train_loss"] == reference.result.history[-1]["train_loss"]


def test_larger_buffers_with_equal_speeds_still_equal_simultaneous(synthetic):
    reference = _trainer(synthetic, "simultaneous", epochs=1)
    reference.fit()
    mine = _trainer(synthetic, Decoupled(capacity=16, max_uses=3), epochs=1)
    mine.fit()
    _assert_same_parameters(reference, mine)


def test_buffer_samples_least_reused_newest_first():
    buffer = ReplayBuffer(capacity=3, max_uses=3)
    for i in range(3):
        buffer.push(torch.tensor([float(i)]), torch.tensor([i]))
    order = [int(buffer.sample()[1]) for _ in range(6)]
    assert order == [2, 1, 0, 2, 1, 0]
    buffer.push(torch.tensor([3.0]), torch.tensor([3]))  # evicts the oldest (0), then is sampled first
    assert len(buffer) == 3
    assert [int(buffer.sample()[1]) for _ in range(2)] == [3, 3]
    assert [int(buffer.sample()[1]) for _ in range(3)] == [3, 2, 1]  # all used twice: newest first
    assert buffer.sample() is None and len(buffer) == 0


def test_buffer_reuse_cap_drops_exhausted_batches():
    buffer = ReplayBuffer(capacity=4, max_uses=2)
    buffer.push(torch.zeros(1), torch.tensor([7]))
    assert int(buffer.sample()[1]) == 7
    assert len(buffer) == 1
    assert int(buffer.sample()[1]) == 7
    assert len(buffer) == 0 and buffer.sample() is None
    no_reuse = ReplayBuffer(capacity=1, max_uses=1)
    no_reuse.push(torch.zeros(1), torch.tensor([1]))
    no_reuse.sample()
    assert no_reuse.sample() is None


def test_slow_stage_updates_fewer_times_counted(synthetic):
    calls = [0, 0, 0]

    class Counting(rules.create("local").__class__):
        def stage_loss(self, out, y):
            calls[out.index] += 1
            return super().stage_loss(out, y)

    schedule = Decoupled(capacity=4, max_uses=1, speeds=(1.0, 0.5, 1.0))
    trainer = _trainer(synthetic, schedule, rule=Counting(), epochs=1)
    record = trainer.fit().history[-1]
    batches = -(-len(synthetic.x_train) // 32)
    assert calls == record["updates"]
    assert calls[0] == batches
    assert calls[1] == batches // 2  # the credit counter fires on every second tick
    assert calls[2] == calls[1]  # no reuse: stage 2 only trains on what stage 1 produced ...
    assert record["starved"][2] == batches - calls[2]  # ... and waits on the other ticks


def test_slow_producer_lets_the_next_stage_reuse(synthetic):
    schedule = Decoupled(capacity=8, max_uses=2, speeds=(0.5, 1.0))
    record = _trainer(synthetic, schedule, widths=(16, 16), epochs=1).fit().history[-1]
    batches = -(-len(synthetic.x_train) // 32)
    assert record["updates"][0] == batches // 2
    # stage 1 waits on the first tick only: after it, every new batch is trained on twice
    assert record["starved"] == [0, 1]
    assert record["updates"][1] == batches - 1 == min(2 * record["updates"][0], batches - 1)


def test_random_speed_mode_is_seeded(synthetic):
    def run():
        schedule = Decoupled(capacity=4, max_uses=2, speeds=(0.5, 1.0), speed_mode="random")
        trainer = _trainer(synthetic, schedule, widths=(16, 16), epochs=1)
        return trainer, trainer.fit().history[-1]["updates"]

    first, updates = run()
    second, again = run()
    assert updates == again
    batches = -(-len(synthetic.x_train) // 32)
    assert 0 < updates[0] < batches
    _assert_same_parameters(first, second)


def test_resume_repeats_the_uninterrupted_run(synthetic, tmp_path):
    def make(path=None):
        return _trainer(synthetic, Decoupled(capacity=4, max_uses=2, speeds=(1.0, 0.5, 1.0)), checkpoint_path=path)

    straight = make()
    straight.fit()

    class Stop(ll.Callback):
        def on_epoch_end(self, trainer, record):
            raise KeyboardInterrupt

    path = tmp_path / "run.pt"
    interrupted = make(str(path))
    interrupted.callbacks.append(Stop())
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = make(str(path))
    resumed.load_checkpoint(path)
    resumed.fit()
    _assert_same_parameters(straight, resumed)


@pytest.mark.parametrize("rule", LOCAL_RULES)
def test_every_local_rule_trains_under_decoupled(synthetic, rule):
    schedule = Decoupled(capacity=4, max_uses=2, speeds=(1.0, 0.5))
    if rule == "forward-forward":  # the schedule is under test: FF's options that learn this toy in 2 epochs
        rule = rules.create(rule, threshold="quarter-units", hinton_init=False)
    trainer = _trainer(synthetic, schedule, rule=rule, widths=(32, 32), dropout=0.0, epochs=2)
    before = [p.detach().clone() for p in trainer.net.parameters()]
    result = trainer.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in result.history[-1]["train_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.net.parameters()))
    assert max(result.final("test")) > 1.5 / synthetic.num_classes  # better than chance


@pytest.mark.parametrize("rule", ["e2e", "joint"])
def test_global_rule_is_rejected(synthetic, rule):
    with pytest.raises(ValueError, match="'decoupled' schedule .* needs a local rule"):
        _trainer(synthetic, "decoupled", rule=rule)


def test_bad_parameters_get_clear_errors(synthetic):
    with pytest.raises(ValueError, match="'capacity' parameter of Decoupled must be an int >= 1"):
        Decoupled(capacity=0)
    with pytest.raises(ValueError, match="'speeds' parameter of Decoupled must be a float > 0.0 and <= 1.0"):
        Decoupled(speeds=(1.0, 0.0))
    with pytest.raises(ValueError, match="'speed_mode' parameter of Decoupled must be one of"):
        Decoupled(speed_mode="fast")
    with pytest.raises(ValueError, match="gives 2 speeds but the network has 3 stages"):
        _trainer(synthetic, Decoupled(speeds=(1.0, 0.5)))


@pytest.mark.parametrize("schedule", [Decoupled(), Decoupled(capacity=2, max_uses=3, speeds=(1.0, 0.5, 1.0))])
def test_passes_the_schedule_conformance_suite(schedule):
    from locallearn.testing import check_schedule

    check_schedule(schedule)
