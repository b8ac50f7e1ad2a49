"""Forward gradients: the estimator against closed forms, the rule's updates written out."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn.rules.base import StageOutput
from _digits import digits_accuracy
from locallearn.rules.forward_gradient import ForwardGradient, forward_gradient, per_example_forward_gradient


def test_one_sample_is_the_directional_derivative_times_the_direction():
    z = torch.tensor([0.3, -1.2, 2.0])
    torch.manual_seed(5)
    got = forward_gradient(lambda v: torch.sin(v).sum() * v[0], z)
    torch.manual_seed(5)
    u = torch.randn(3)
    grad = torch.cos(z) * z[0]
    grad[0] += torch.sin(z).sum()  # d/dz0 of sum(sin z) * z0
    torch.testing.assert_close(got, (grad @ u) * u)


@pytest.mark.slow
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


def _hand_update(x, y, z, linear, head, g):
    """The block's and head's gradients for an estimate ``g`` of dL/dz, written out for Linear -> ReLU."""
    a = x @ linear.weight.T + linear.bias
    delta = g * (a > 0)  # through the block's ReLU
    return delta.T @ x, delta.sum(0)


def test_per_example_estimate_is_each_examples_own_directional_derivative_times_its_direction():
    net, x, y, out = _stage_output()
    stage = net.stages[0]
    torch.manual_seed(7)
    loss = ForwardGradient().stage_loss(out, y)
    loss.backward()
    linear, head = stage.block[1], stage.head.linear
    z = out.h_out.detach()
    torch.testing.assert_close(loss.detach(), F.cross_entropy(head(z), y))
    # Ren et al.: one direction u_i per example; g_i = (grad_{z_i} l_i . u_i) u_i / N for the batch mean
    torch.manual_seed(7)
    u = torch.randn_like(z)
    p = torch.softmax(z @ head.weight.T + head.bias, 1)
    grad_l = (p - F.one_hot(y, 3)) @ head.weight  # row i: gradient of example i's own loss l_i
    g = (grad_l * u).sum(1, keepdim=True) * u / len(y)
    weight_grad, bias_grad = _hand_update(x, y, z, linear, head, g)
    torch.testing.assert_close(linear.weight.grad, weight_grad)
    torch.testing.assert_close(linear.bias.grad, bias_grad)
    torch.testing.assert_close(head.weight.grad, ((p - F.one_hot(y, 3)) / len(y)).T @ z)


def test_batch_perturbation_is_one_directional_derivative_of_the_batch_mean():
    net, x, y, out = _stage_output()
    stage = net.stages[0]
    torch.manual_seed(7)
    ForwardGradient(perturbation="batch").stage_loss(out, y).backward()
    linear, head = stage.block[1], stage.head.linear
    z = out.h_out.detach()
    torch.manual_seed(7)
    u = torch.randn_like(z)
    p = torch.softmax(z @ head.weight.T + head.bias, 1)
    grad_z = (p - F.one_hot(y, 3)) / len(y) @ head.weight
    g = (grad_z * u).sum() * u  # one scalar for the whole batch
    weight_grad, _ = _hand_update(x, y, z, linear, head, g)
    torch.testing.assert_close(linear.weight.grad, weight_grad)


def test_per_example_directions_have_far_less_error_than_one_for_the_batch():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 10)
    z, y = torch.randn(64, 16), torch.randint(0, 10, (64,))
    zg = z.clone().requires_grad_(True)
    F.cross_entropy(head(zg), y).backward()
    exact = zg.grad

    def error(estimate):
        return float(((estimate - exact) ** 2).sum())

    with torch.no_grad():
        per_example = sum(error(per_example_forward_gradient(lambda v: F.cross_entropy(head(v), y, reduction="none"), z))
                          for _ in range(50))
        batch = sum(error(forward_gradient(lambda v: F.cross_entropy(head(v), y), z)) for _ in range(50))
    assert batch > 10 * per_example  # expected ratio about the batch size (64)


@pytest.mark.slow
def test_per_example_estimate_is_unbiased():
    torch.manual_seed(1)
    z = torch.tensor([[0.5, -1.0], [2.0, 0.0], [1.0, 1.0]])
    estimate = per_example_forward_gradient(lambda v: torch.sin(v).sum(1), z, samples=40000)
    torch.testing.assert_close(estimate, torch.cos(z) / 3, atol=0.02, rtol=0)


def test_bad_perturbation_is_a_clear_error():
    with pytest.raises(ValueError, match="'perturbation' parameter of ForwardGradient must be one of 'example', 'batch'"):
        ForwardGradient(perturbation="layer")


@pytest.mark.slow
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
