"""Reference tests of the engine: local rules against plain backprop, gradient isolation, caching, resume."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn.net import LocalNet, Stage


def _one_stage_net() -> LocalNet:
    return LocalNet([Stage(nn.Sequential(nn.Linear(16, 32), nn.Tanh()), nn.Linear(32, 4))])


def test_one_stage_local_simultaneous_equals_plain_backprop(synthetic):
    ll.seed_everything(0)
    net = _one_stage_net()
    reference = copy.deepcopy(net.stages[0])
    config = ll.TrainConfig(epochs=1, batch_size=50, optimizer="sgd", lr=0.1, progress=False, eval_every=0)
    trainer = ll.Trainer(net, synthetic, rule="local", schedule="simultaneous", config=config)
    trainer.fit()

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(0 * 1_000_003 + 0)  # the documented (seed, epoch) order
    order = torch.randperm(len(synthetic.x_train), generator=generator)
    for start in range(0, len(order), 50):
        index = order[start : start + 50]
        optimizer.zero_grad()
        F.cross_entropy(reference.head(reference.block(synthetic.x_train[index])), synthetic.y_train[index]).backward()
        optimizer.step()
    for ours, theirs in zip(net.stages[0].parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_local_rule_sends_no_gradient_across_stages(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (16, 16, 16), synthetic.num_classes)
    rule = ll.rules.create("local")
    state = ll.schedules.TrainState(
        net=net, rule=rule, optimizers=[None, None, None], x_train=synthetic.x_train, y_train=synthetic.y_train,
        batch_size=32, seed=0,
    )
    # Only stage 2's loss: with a local rule, blocks 0 and 1 must receive no gradient at all.
    only_last = ll.rules.create("local")
    only_last.stage_loss = lambda out, y: F.cross_entropy(out.logits, y) if out.is_last else None  # type: ignore[method-assign]
    state.rule = only_last
    ll.schedules.train_step(state, synthetic.x_train[:32], synthetic.y_train[:32], range(3))
    assert all(p.grad is None for p in net.stages[0].parameters())
    assert all(p.grad is None for p in net.stages[1].parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.stages[2].parameters())
    # The same step under e2e reaches block 0.
    state.rule = ll.rules.create("e2e", probe_heads=False)
    ll.schedules.train_step(state, synthetic.x_train[:32], synthetic.y_train[:32], range(3))
    assert net.stages[0].block[1].weight.grad.abs().sum() > 0
    del rule


def test_e2e_backbone_gradient_equals_plain_backprop_of_last_exit(synthetic):
    ll.seed_everything(1)
    net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    x, y = synthetic.x_train[:40], synthetic.y_train[:40]
    F.cross_entropy(net(x)[-1], y).backward()
    expected = [p.grad.clone() for p in net.stages[0].block.parameters()]
    net.zero_grad(set_to_none=True)
    state = ll.schedules.TrainState(net=net, rule=ll.rules.create("e2e"), optimizers=[None, None],
                                    x_train=x, y_train=y, batch_size=40, seed=0)
    ll.schedules.train_step(state, x, y, range(2))
    for got, want in zip([p.grad for p in net.stages[0].block.parameters()], expected):
        torch.testing.assert_close(got, want)
    assert net.stages[0].head.linear.weight.grad is not None  # the probe head still learns


@pytest.mark.parametrize("build", ["mlp", "cnn"])
def test_e2e_training_equals_a_plain_loop_with_probe_heads(build):
    # e2e computes each earlier exit once, on detached features, for both its logits and its probe loss;
    # the plain loop: the last exit's cross-entropy through every block plus each earlier head's on detached h
    ll.seed_everything(3)
    net = ll.build_mlp((16,), (24, 24, 24), 4) if build == "mlp" else ll.build_cnn((1, 10, 10), (4, 4), 4)
    reference = copy.deepcopy(net)
    ours, theirs = torch.optim.Adam(net.parameters(), lr=1e-2), torch.optim.Adam(reference.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    shape = (16,) if build == "mlp" else (1, 10, 10)
    for _ in range(4):
        x, y = torch.randn(12, *shape, generator=g), torch.randint(0, 4, (12,), generator=g)
        ours.zero_grad()
        step = ll.backward(net, x, y, "e2e")
        ours.step()
        theirs.zero_grad()
        h, losses, probe_logits = x, [], []
        for k, stage in enumerate(reference.stages):
            h = stage.block(h)
            logits = stage.head(h if k == len(reference.stages) - 1 else h.detach())
            probe_logits.append(logits.detach())
            losses.append(F.cross_entropy(logits, y))
        torch.stack(losses).sum().backward()
        theirs.step()
        for got, want in zip(step.logits, probe_logits):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        for got, want in zip(step.losses, losses):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=0)
    for (name, got), want in zip(net.named_parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)


def test_e2e_runs_each_head_once_per_step():
    net = ll.build_mlp((16,), (24, 24, 24), 4)
    calls = []
    for k, stage in enumerate(net.stages):
        stage.head.register_forward_hook(lambda module, args, output, k=k: calls.append((k, args[0].requires_grad)))
    ll.backward(net, torch.randn(6, 16), torch.arange(6) % 4, "e2e")
    assert calls == [(0, False), (1, False), (2, True)]  # the probes on detached features, the last in the graph


def test_joint_weights_scale_each_exit_loss(synthetic):
    ll.seed_everything(2)
    net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    x, y = synthetic.x_train[:40], synthetic.y_train[:40]
    logits = net(x)
    (0.3 * F.cross_entropy(logits[0], y) + 1.0 * F.cross_entropy(logits[1], y)).backward()
    expected = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    state = ll.schedules.TrainState(net=net, rule=ll.rules.create("joint", weights=(0.3, 1.0)), optimizers=[None, None],
                                    x_train=x, y_train=y, batch_size=40, seed=0)
    ll.schedules.train_step(state, x, y, range(2))
    for got, want in zip([p.grad for p in net.parameters()], expected):
        torch.testing.assert_close(got, want)


def test_sequential_never_runs_frozen_blocks_after_caching(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (16, 16, 16), synthetic.num_classes)
    calls = [0, 0, 0]  # every forward of each block, with or without grad

    def counting(k, forward):
        def wrapped(h):
            calls[k] += 1
            return forward(h)
        return wrapped

    for k, stage in enumerate(net.stages):
        stage.block.forward = counting(k, stage.block.forward)
    seen = []

    class Spy(ll.Callback):
        def on_epoch_end(self, trainer, record):
            seen.append(list(calls))

    config = ll.TrainConfig(epochs=2, batch_size=64, progress=False, eval_every=0)
    ll.Trainer(net, synthetic, rule="local", schedule="sequential", config=config, callbacks=[Spy()]).fit()
    batches = -(-len(synthetic.x_train) // 64)
    cached = 3 * batches  # two training epochs, then one caching pass in chunks of the batch size
    assert [s[0] for s in seen[:5]] == [batches, 2 * batches] + [cached] * 3  # then never again
    assert [s[1] for s in seen[:5]] == [0, 0, batches, 2 * batches, cached]
    assert seen[4][2] == batches
    assert seen[5][0] == cached + 2  # the final evaluation on val and test, after training


def test_sequential_rejects_a_global_rule(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8, 8), synthetic.num_classes)
    with pytest.raises(ValueError, match="needs a local rule"):
        ll.Trainer(net, synthetic, rule="e2e", schedule="sequential")


@pytest.mark.parametrize("schedule", ["simultaneous", "sequential"])
def test_resume_from_checkpoint_matches_uninterrupted_run(synthetic, tmp_path, schedule):
    def make(epochs_done_path=None):
        ll.seed_everything(3)
        net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes, dropout=0.2)
        config = ll.TrainConfig(epochs=2, batch_size=32, lr_schedule="step", progress=False, checkpoint_path=epochs_done_path)
        return ll.Trainer(net, synthetic, rule="local", schedule=schedule, config=config)

    straight = make()
    straight.fit()

    path = tmp_path / "run.pt"
    interrupted = make(str(path))

    class Stop(ll.Callback):
        def on_epoch_end(self, trainer, record):
            if trainer.epoch == 1:
                raise KeyboardInterrupt

    interrupted.callbacks.append(Stop())
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert path.exists()  # written atomically at the end of epoch 1, before the interruption

    resumed = make(str(path))
    resumed.load_checkpoint(path)
    assert resumed.epoch == 1
    resumed.fit()
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["epoch"] for r in resumed.result.history] == list(range(1, straight.total_epochs + 1))


def test_trainers_advancing_in_turns_equal_solo_runs(synthetic):
    def make(rule):
        ll.seed_everything(6)
        net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes, dropout=0.3)
        return ll.Trainer(net, synthetic, rule=rule, config=ll.TrainConfig(epochs=3, progress=False))

    solo = [make("local"), make("joint")]
    for trainer in solo:
        trainer.fit()
    turns = [make("local"), make("joint")]
    while turns[0].epoch < turns[0].total_epochs:
        for trainer in turns:
            trainer.fit(epochs=1)
    for a, b in zip(solo, turns):
        assert [r["train_loss"] for r in a.result.history] == [r["train_loss"] for r in b.result.history]
