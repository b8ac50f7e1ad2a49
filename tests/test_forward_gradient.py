"""Forward gradients: the estimator against closed forms, the rule's updates written out."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn.rules.base import StageOutput
from _digits import digits_accuracy
from locallearn.rules.forward_gradient import ForwardGradient, forward_gradient


def test_one_sample_is_the_directional_derivative_times_the_direction():
    z = torch.tensor([0.3, -1.2, 2.0])
    torch.manual_seed(5)
    got = forward_gradient(lambda v: torch.sin(v).sum() * v[0], z)
    torch.manual_seed(5)
    u = torch.randn(3)
    grad = torch.cos(z) * z[0]
    grad[0] += torch.sin(z).sum()  # d/dz0 of sum(sin z) * z0
    torch.testing.assert_close(got, (grad @ u) * u)


def test_the_estimate_is_unbiased():
    torch.manual_seed(0)
    z = torch.tensor([0.5, -1.0, 2.0, 0.0])
    estimate = forward_gradient(lambda v: torch.sin(v).sum(), z, samples=40000)
    torch.testing.assert_close(estimate, torch.cos(z), atol=0.05, rtol=0)


def _stage_output(seed=0):
    torch.manual_seed(seed)
    net = ll.build_mlp((6,), (5, 5), 3)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    stage = net.stages[0]
    z = stage.block(x)
    return net, x, y, StageOutput(index=0, is_last=False, stage=stage, h_in=x, h_out=z, logits=stage.head(z), x=x)


def test_block_weights_get_the_outer_product_of_the_estimate_and_the_head_its_exact_gradient():
    net, x, y, out = _stage_output()
    stage = net.stages[0]
    torch.manual_seed(7)
    loss = ForwardGradient().stage_loss(out, y)
    loss.backward()
    linear, head = stage.block[1], stage.head.linear
    z = out.h_out.detach()
    torch.testing.assert_close(loss.detach(), F.cross_entropy(head(z), y))
    # the estimate, made by hand with the same direction: g = (grad_z L . u) u
    torch.manual_seed(7)
    u = torch.randn_like(z)
    p = torch.softmax(z @ head.weight.T + head.bias, 1)
    grad_z = (p - F.one_hot(y, 3)) / len(y) @ head.weight
    g = (grad_z * u).sum() * u
    a = x @ linear.weight.T + linear.bias
    delta = g * (a > 0)  # through the block's ReLU
    torch.testing.assert_close(linear.weight.grad, delta.T @ x)
    torch.testing.assert_close(linear.bias.grad, delta.sum(0))
    torch.testing.assert_close(head.weight.grad, ((p - F.one_hot(y, 3)) / len(y)).T @ z)


def test_many_samples_recover_the_local_backprop_update():
    net, x, y, out = _stage_output(1)
    linear = net.stages[0].block[1]
    torch.manual_seed(2)
    ForwardGradient(samples=20000).stage_loss(out, y).backward()
    estimate = linear.weight.grad.clone()
    linear.weight.grad = None
    F.cross_entropy(net.stages[0].head(net.stages[0].block(x)), y).backward()
    exact = linear.weight.grad
    cosine = F.cosine_similarity(estimate.flatten(), exact.flatten(), dim=0)
    assert cosine > 0.98


def test_bad_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="'samples' parameter of ForwardGradient must be an int >= 1"):
        ForwardGradient(samples=0)


@pytest.mark.parametrize("schedule", ["simultaneous", "sequential"])
def test_trains_on_digits(schedule):
    assert min(digits_accuracy("forward-gradient", schedule=schedule)) > 0.5  # chance is 0.1
