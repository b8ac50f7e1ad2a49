"""wrap by tracing: every functional op of forward kept, cuts at modules or nodes, the wrap-time check."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import locallearn as ll
from locallearn.wrap import trace


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class Functional(nn.Module):
    """Functional ReLU, pooling and flatten in forward, residual adds inside its blocks: the
    modules alone, run in order, are a different network."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.blocks = nn.Sequential(Residual(6), Residual(6))
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        x = self.blocks(x)
        return self.fc(torch.flatten(F.avg_pool2d(x, 2), 1) * 0.5)


def test_a_model_with_functional_ops_is_wrapped_exactly():
    torch.manual_seed(0)
    model = Functional()
    net = ll.wrap(model, split=["blocks.0", "blocks.1"], num_classes=5, input_shape=(1, 8, 8), head="conv")
    assert net.num_exits == 3 and isinstance(net.stages[-1].head, nn.Identity)
    x = torch.randn(7, 1, 8, 8)
    assert torch.equal(net(x)[-1], model(x))
    # the modules alone, in order (what a children-based cut builds), are another function
    children = nn.Sequential(model.stem, model.blocks, nn.Flatten(), nn.LazyLinear(5))
    assert children(x).shape == model(x).shape and not torch.equal(children(x), model(x))
    # the blocks hold the user's own parameters; stage 1 is the stem and its pooling
    assert {id(p) for s in net.stages for p in s.block.parameters()} == {id(p) for p in model.parameters()}
    h = net.stages[0].block(x)
    assert torch.equal(h, F.max_pool2d(F.relu(model.stem(x)), 2))


def test_a_cut_may_name_a_node_of_the_traced_graph():
    model = Functional()
    graph_nodes = [n.name for n in trace(model).graph.nodes]
    assert "max_pool2d" in graph_nodes
    net = ll.wrap(model, split=["max_pool2d"], num_classes=5, input_shape=(1, 8, 8), head="conv")
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(net.stages[0].block(x), F.relu(model.stem(x)))  # the stage opened at the pooling
    assert torch.equal(net(x)[-1], model(x))


def test_a_cut_inside_a_residual_block_is_refused_naming_the_crossing_values():
    with pytest.raises(ValueError, match=r"Cannot cut at 'blocks.0.conv2' \(before node 'blocks_0_conv2'\): 2 values cross"):
        ll.wrap(Functional(), split=["blocks.0.conv2"], num_classes=5, input_shape=(1, 8, 8), head="conv")


def test_a_split_naming_nothing_lists_the_children():
    with pytest.raises(ValueError, match="'layer9' names no layer of the model. Its children are: stem, blocks, fc"):
        ll.wrap(Functional(), split=["layer9"], num_classes=5, input_shape=(1, 8, 8))


class WithTrainingBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 3)
        self.scale = 2.0

    def forward(self, x):
        h = torch.relu(self.a(x))
        if self.training:  # the trace keeps this branch only
            h = h * self.scale
        return self.b(h)


def test_the_wrap_time_check_catches_a_graph_that_differs_from_forward():
    model = WithTrainingBranch().train()
    with pytest.raises(ValueError, match=r"traced graph of WithTrainingBranch does not compute its forward.*max \|difference\|"):
        ll.wrap(model, split=["b"], num_classes=3, input_shape=(4,))
    assert model.training  # the check leaves the model's mode as it was
    ll.wrap(model.eval(), split=["b"], num_classes=3, input_shape=(4,))  # traced in eval mode, it is eval's function


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:
            h = -h
        return self.b(h)


def test_an_untraceable_forward_is_refused_naming_the_node():
    with pytest.raises(ValueError, match=r"wrap cannot trace DataDependent.forward with torch.fx: it stopped after node 'gt'"):
        ll.wrap(DataDependent(), split=["b"], num_classes=3, input_shape=(4,))


def test_a_wrapped_model_trains_locally_from_its_own_heads(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), Residual(8), nn.Flatten(), nn.Linear(8 * 64, 10))
    net = ll.wrap(model, split=[2], num_classes=10, input_shape=(1, 8, 8), head="conv")
    x, y = digits.x_train[:32], digits.y_train[:32]
    ll.backward(net, x, y, "local")
    reference = [p.grad.clone() for p in net.stages[0].block.parameters()]
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net.stages[0].head(net.stages[0].block(x)), y).backward()  # stage 1's own loss alone
    for ours, theirs in zip(reference, net.stages[0].block.parameters()):
        torch.testing.assert_close(ours, theirs.grad, rtol=0, atol=1e-6)
