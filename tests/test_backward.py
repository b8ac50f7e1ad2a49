"""The per-batch core ``locallearn.backward``: a user's own loop, a model of one's own, every rule."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import locallearn as ll
from locallearn.rules import RULES


class ResidualBlock(nn.Module):
    """A plain residual block, as a user would write one."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


def residual_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), ResidualBlock(8),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), ResidualBlock(16),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def test_plain_user_loop_with_a_dataloader_and_flips_trains_each_stage_from_its_own_loss(digits):
    torch.manual_seed(0)
    net = ll.wrap(residual_cnn(), split=[3, 6], num_classes=10, input_shape=(1, 8, 8), head="conv")
    # -- the user's loop, exactly as in the README --
    loader = DataLoader(TensorDataset(digits.x_train, digits.y_train), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    flip = ll.data.augment.HorizontalFlip()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses, checked = [], False
    for epoch in range(3):
        for x, y in loader:
            x = flip(x, generator)
            optimizer.zero_grad()
            reference = copy.deepcopy(net.stages[0]) if not checked else None
            step = ll.backward(net, x, y, "local")
            if reference is not None:  # stage 0's gradient is that of its own loss alone
                F.cross_entropy(reference.head(reference.block(x)), y).backward()
                for ours, theirs in zip(net.stages[0].parameters(), reference.parameters()):
                    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-6)
                checked = True
            optimizer.step()
            losses.append(step.losses)
    first, last = torch.tensor(losses[:5]).mean(0), torch.tensor(losses[-5:]).mean(0)
    assert (last < first - 0.05).all() and last.min() < 0.5 * first.min(), (first, last)
    assert len(step.logits) == 3 and step.logits[-1].shape == (len(y), 10) and not step.logits[-1].requires_grad


def _grads(net: ll.LocalNet) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("name", RULES.names())
def test_backward_gives_the_gradients_of_train_step_for_every_rule(name, synthetic):
    torch.manual_seed(0)
    ours = ll.build_mlp(synthetic.input_shape, (12, 12, 12), synthetic.num_classes)
    theirs = copy.deepcopy(ours)
    rule_ours, rule_theirs = RULES.create(name), RULES.create(name)
    ll.prepare(ours, rule_ours)
    ll.prepare(theirs, rule_theirs)
    theirs.load_state_dict(ours.state_dict())  # setup may draw random modules: make both nets identical
    x, y = synthetic.x_train[:32], synthetic.y_train[:32]
    torch.manual_seed(1)
    step = ll.backward(ours, x, y, rule_ours)
    state = ll.schedules.TrainState(net=theirs, rule=rule_theirs, optimizers=[None] * 3, x_train=x, y_train=y, batch_size=32)
    torch.manual_seed(1)
    losses = ll.schedules.train_step(state, x, y, range(3))
    torch.testing.assert_close(torch.tensor(step.losses), torch.tensor(losses), equal_nan=True, rtol=0, atol=0)
    for a, b in zip(_grads(ours), _grads(theirs)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_parameter_added_by_setup_that_the_optimiser_lacks_is_an_error(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (12, 12), synthetic.num_classes)
    optimizer = torch.optim.Adam(net.parameters())  # built before predsim's setup adds its projection
    x, y = synthetic.x_train[:8], synthetic.y_train[:8]
    with pytest.raises(ValueError, match=r"added \d+ trainable parameters .*locallearn.prepare\(net, rule\) before"):
        ll.backward(net, x, y, "predsim")
    other = ll.build_mlp(synthetic.input_shape, (12, 12), synthetic.num_classes)
    stale = torch.optim.Adam(other.parameters())
    with pytest.raises(ValueError, match=r"trainable parameters of the net are in no optimiser \(stages.0.aux"):
        ll.backward(other, x, y, "predsim", optimizer=stale)
    del optimizer


def test_prepare_first_then_the_optimiser_trains_every_parameter(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (12, 12), synthetic.num_classes)
    rule = ll.prepare(net, "predsim")
    optimizer = torch.optim.Adam(net.parameters())
    before = [p.detach().clone() for p in net.parameters()]
    ll.backward(net, synthetic.x_train[:16], synthetic.y_train[:16], rule, optimizer=optimizer)
    optimizer.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()) if p.requires_grad)
    assert ll.prepare(net, "predsim") is ll.prepare(net, "predsim")  # a name gives one instance per net


def test_bad_batches_and_nets_get_clear_errors(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8,), synthetic.num_classes)
    x, y = synthetic.x_train[:4], synthetic.y_train[:4]
    with pytest.raises(ValueError, match=r"1-D tensor of integer class indices; got shape \(4, 1\).*view\(-1\)"):
        ll.backward(net, x, y[:, None], "local")
    with pytest.raises(ValueError, match="4 inputs but 3 labels"):
        ll.backward(net, x, y[:3], "local")
    small = ll.build_mlp(synthetic.input_shape, (8,), 2)
    with pytest.raises(ValueError, match="gives 2 scores per sample, but the labels reach 3"):
        ll.backward(small, x, torch.tensor([0, 1, 3, 2]), "local")
    with pytest.raises(TypeError, match="needs a LocalNet .*locallearn.wrap"):
        ll.backward(nn.Linear(16, 4), x, y, "local")
    with pytest.raises(ValueError, match="Unknown rule .*Known"):
        ll.backward(net, x, y, "no-such-rule")


def test_a_grad_scaler_scales_every_stage_loss(synthetic):
    net = ll.build_mlp(synthetic.input_shape, (8, 8), synthetic.num_classes)
    plain = copy.deepcopy(net)
    x, y = synthetic.x_train[:16], synthetic.y_train[:16]
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    ll.backward(net, x, y, "local", scaler=scaler)
    ll.backward(plain, x, y, "local")
    for scaled, reference in zip(net.parameters(), plain.parameters()):
        torch.testing.assert_close(scaled.grad, 1024.0 * reference.grad)


def test_autocast_dtype_runs_the_forward_in_it_as_the_trainers_amp_does(synthetic):
    from locallearn.engine import run_stages

    net = ll.build_mlp(synthetic.input_shape, (8, 8), synthetic.num_classes)
    same = copy.deepcopy(net)
    x, y = synthetic.x_train[:16], synthetic.y_train[:16]
    step = ll.backward(net, x, y, "local", autocast_dtype=torch.bfloat16)
    assert all(logits.dtype == torch.bfloat16 for logits in step.logits)
    # the Trainer's amp path (train_step -> run_stages with the same dtype) gives the same gradients
    run_stages(same, ll.prepare(same, "local"), x, y, range(len(same.stages)), x=x, autocast_dtype=torch.bfloat16)
    for got, want in zip(net.parameters(), same.parameters()):
        assert got.grad.dtype == torch.float32
        torch.testing.assert_close(got.grad, want.grad)


def test_the_step_result_carries_each_blocks_output_and_the_batch_the_stages_trained_on():
    torch.manual_seed(0)
    net = ll.build_mlp((16,), (12, 10), 4)
    x, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.no_grad():
        _, features = net(x, return_features=True)
    step = ll.backward(net, x, y, "local")
    assert len(step.outputs) == 2 and not any(h.requires_grad for h in step.outputs)
    for got, expected in zip(step.outputs, features):
        torch.testing.assert_close(got, expected)
    assert step.labels is y and step.inputs is x
    ff = ll.build_mlp((16,), (12, 10), 4)
    rule = ll.prepare(ff, "forward-forward")
    step = ll.backward(ff, x, y, rule)  # positive then negative rows: the batch the stages saw
    assert step.labels.shape == (12,) and torch.equal(step.labels[:6], y) and bool((step.labels[6:] < 0).all())
    assert step.inputs.shape == (12, 16) and step.outputs[0].shape == (12, 12)
