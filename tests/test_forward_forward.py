"""Forward-Forward: goodness, loss, data and inference written out from Hinton (2022)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn.rules.base import StageOutput
from _digits import digits_accuracy
from locallearn.rules.forward_forward import ForwardForward, ForwardForwardNet, LengthNorm


def _net(widths=(12, 10, 8), classes=4):
    torch.manual_seed(0)
    net = ll.build_mlp((16,), widths, classes)
    rule = ForwardForward()
    rule.setup(net)
    return net, rule


def test_loss_is_the_logistic_of_goodness_minus_threshold_on_positive_and_negative_rows():
    net, _ = _net()
    rule = ForwardForward(threshold=3.0)
    h = torch.randn(6, 12, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, -1, -3, -4])  # three positive rows, three negative
    out = StageOutput(index=0, is_last=False, stage=net.stages[0], h_in=h, h_out=h, logits=h[:, :1], x=h)
    g = (h ** 2).sum(1)
    sig = torch.sigmoid(g - 3.0)
    expected = -torch.log(sig[:3]).mean() - torch.log(1 - sig[3:]).mean()
    torch.testing.assert_close(rule.stage_loss(out, y), expected)
    default = ForwardForward().stage_loss(out, y)  # Hinton's code: theta = the number of units (12)
    sig = torch.sigmoid(g - 12.0)
    torch.testing.assert_close(default, -torch.log(sig[:3]).mean() - torch.log(1 - sig[3:]).mean())
    quarter = ForwardForward(threshold="quarter-units").stage_loss(out, y)  # the earlier default: 12 / 4
    sig = torch.sigmoid(g - 3.0)
    torch.testing.assert_close(quarter, -torch.log(sig[:3]).mean() - torch.log(1 - sig[3:]).mean())


def test_positive_and_negative_data():
    _, rule = _net()
    torch.manual_seed(3)
    x, y = torch.randn(50, 16), torch.randint(0, 4, (50,))
    both, labels = rule.transform_batch(x, y)
    pos, neg = both[:50], both[50:]
    assert torch.equal(pos[:, :4], F.one_hot(y, 4).float()) and torch.equal(labels[:50], y)
    wrong = -1 - labels[50:]
    assert (wrong != y).all() and ((wrong >= 0) & (wrong < 4)).all()
    assert torch.equal(neg[:, :4], F.one_hot(wrong, 4).float())
    assert torch.equal(pos[:, 4:], x[:, 4:]) and torch.equal(neg[:, 4:], x[:, 4:])
    assert len(set(wrong.tolist())) > 1


def test_setup_normalises_between_layers_and_inference_scores_every_label_by_goodness():
    net, _ = _net()
    assert isinstance(net, ForwardForwardNet) and net.num_classes == 4
    assert all(isinstance(s.block[0], LengthNorm) for s in net.stages)  # the first layer's input too (Hinton)
    x = torch.randn(5, 16)
    exits = net(x)
    per_label = []
    for c in range(4):
        h = x.clone()
        h[:, :4] = F.one_hot(torch.full((5,), c), 4).float()
        layer_goodness = []
        for k, stage in enumerate(net.stages):
            h = h / h.pow(2).mean(1, keepdim=True).sqrt()  # length (RMS) normalisation, the labelled input too
            h = stage.block[-1](h)
            layer_goodness.append(h.pow(2).sum(1))
        per_label.append(layer_goodness)
    goodness = torch.stack([torch.stack(g) for g in per_label], dim=2)  # (layer, N, label)
    torch.testing.assert_close(exits[0], goodness[0])
    torch.testing.assert_close(exits[1], goodness[1])
    torch.testing.assert_close(exits[2], goodness[1] + goodness[2])  # all but the first layer (Hinton)


@pytest.mark.parametrize("schedule", ["sequential", "freezeout", "pipeline"])
def test_schedules_whose_later_stages_skip_the_rules_batches_refuse_it_before_training(schedule):
    ds = ll.data.load("synthetic")
    net = ll.build_mlp(ds.input_shape, (16, 16), ds.num_classes)
    with pytest.raises(ValueError, match=f"builds its own batches .transform_batch., which the '{schedule}' schedule"):
        ll.Trainer(net, ds, rule="forward-forward", schedule=schedule, config=ll.TrainConfig(epochs=1, progress=False))


def test_cached_inputs_without_the_rules_batches_are_refused_in_an_own_loop_too():
    net = ll.build_mlp((16,), (12, 10), 4)
    rule = ll.prepare(net, "forward-forward")
    h = net.stages[0].block(torch.randn(6, 16)).detach()
    with pytest.raises(RuntimeError, match="no mix of positive and negative rows"):
        ll.engine.run_stages(net, rule, h, torch.tensor([0, 1, 2, 3, 0, 1]), [1])


def test_normalise_input_false_leaves_the_first_layers_input_as_it_is():
    torch.manual_seed(0)
    net = ll.build_mlp((16,), (12, 10), 4)
    ForwardForward(normalise_input=False).setup(net)
    assert not isinstance(net.stages[0].block[0], LengthNorm) and isinstance(net.stages[1].block[0], LengthNorm)


REFUSED = {  # a bad call -> (its error, what the message says)
    "a threshold name it does not know": (lambda: ForwardForward(threshold="half"), ValueError,
                                          "'threshold' parameter of ForwardForward must be a float >= 0 or one of 'units'"),
    "a negative threshold": (lambda: ForwardForward(threshold=-1.0), ValueError,
                             "'threshold' parameter of ForwardForward must be a float >= 0"),
    "a batch before setup": (lambda: ForwardForward().transform_batch(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)),
                             RuntimeError, "run setup"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_other_nets_and_bad_parameters_are_refused(case):
    call, error, message = REFUSED[case]
    pytest.raises(error, call).match(message)


def test_trains_on_digits_and_the_deeper_exit_keeps_up():
    accuracy = digits_accuracy("forward-forward", widths=(128, 128), epochs=15)
    assert accuracy[0] > 0.7 and accuracy[1] > 0.7  # chance is 0.1


def test_setup_initialises_the_blocks_as_hintons_code_and_can_keep_the_nets_own():
    """ffnew.m: weights{l} = (1/sqrt(layernums{l-1})) * randn(...), biases{l} = 0."""
    torch.manual_seed(0)
    net = ll.build_mlp((64,), (200, 300), 5)
    ForwardForward().setup(net)
    linears = [m for s in net.stages for m in s.block.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.in_features for m in linears] == [64, 200]
    for m in linears:
        assert abs(m.weight.std().item() - m.in_features ** -0.5) < 0.02 * m.in_features ** -0.5 + 2e-3
        assert abs(m.weight.mean().item()) < 3 * m.in_features ** -0.5 / m.weight.numel() ** 0.5
        assert torch.count_nonzero(m.bias) == 0
    torch.manual_seed(0)
    own = ll.build_mlp((64,), (200, 300), 5)
    before = [p.clone() for s in own.stages for p in s.block.parameters()]
    ForwardForward(hinton_init=False).setup(own)
    assert all(torch.equal(a, b) for a, b in zip(before, [p for s in own.stages for p in s.block.parameters()]))
