"""The GCN: Kipf & Welling's layer, the renormalised adjacency, the generated block model, per-layer exits
under e2e and local on a graph whose labels need the edges."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn import graphs, models


def test_renormalised_adjacency_is_kipf_and_wellings_formula():
    edges = torch.tensor([[0, 1], [1, 2]])
    a = torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]) + torch.eye(3)
    d = torch.diag(a.sum(1) ** -0.5)
    torch.testing.assert_close(graphs.renormalised_adjacency(edges, 3), d @ a @ d)


def test_graph_conv_is_relu_of_a_hat_h_w():
    family = models.create("gcn", widths=(4,), dropout=0.0, graph_kw={"nodes": 10, "classes": 2, "features": 3})
    graph = family.load_graph()
    layer = family.build((3,), 2).stages[0].block
    expected = torch.relu(graph.adjacency @ (graph.x @ layer.linear.weight.t() + layer.linear.bias))
    torch.testing.assert_close(layer(graph.x), expected)


def test_the_block_model_is_repeatable_and_has_more_edges_inside_blocks():
    a = graphs.stochastic_block_model(nodes=200, classes=2, seed=3)
    b = graphs.stochastic_block_model(nodes=200, classes=2, seed=3)
    assert torch.equal(a.adjacency, b.adjacency) and torch.equal(a.x, b.x)
    linked = (a.adjacency > 0) & ~torch.eye(200, dtype=torch.bool)
    same = a.y[:, None] == a.y[None, :]
    assert linked[same].float().mean() > 3 * linked[~same].float().mean()
    assert not (a.train & a.test).any() and not (a.val & a.test).any() and int(a.train.sum()) == 40


def test_only_the_split_nodes_count_in_the_loss():
    family = models.create("gcn", widths=(4,), dropout=0.0, graph_kw={"nodes": 30, "classes": 3, "features": 4})
    graph = family.load_graph()
    net = family.build((4,), 3)
    step = ll.backward(net, graph.x, graph.targets("train"), "local")
    with torch.no_grad():
        logits = net(graph.x)[0]
    assert step.losses[0] == pytest.approx(float(F.cross_entropy(logits[graph.train], graph.y[graph.train])), rel=1e-6)


def test_a_gcn_layer_refuses_a_part_of_the_graph():
    net = models.build("gcn", (4,), 3, widths=(4,), graph_kw={"nodes": 30, "classes": 3, "features": 4})
    with pytest.raises(ValueError, match="every node of its graph at once"):
        net(torch.randn(10, 4))


def test_unknown_graph_lists_the_known_ones():
    with pytest.raises(ValueError, match="karate, sbm"):
        models.create("gcn", graph="cora")


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["e2e", "local"])
def test_gcn_exits_beat_the_features_alone_on_a_block_model(rule):
    """With weak features (signal 0.3) the edges carry the labels: a trained GCN's exits beat a linear read-out of the
    features alone, for e2e and for local training."""
    kw = {"nodes": 200, "classes": 2, "features": 8, "signal": 0.3, "p_in": 0.08, "p_out": 0.01, "train_per_class": 10}
    torch.manual_seed(0)
    family = models.create("gcn", widths=(16, 16), dropout=0.0, graph_kw=kw)
    graph = family.load_graph()
    net = family.build((8,), 2)
    graphs.train_gcn(net, graph, rule, epochs=60)
    torch.manual_seed(0)
    features_only = ll.build_mlp((8,), (16,), 2)
    graphs.train_gcn(features_only, graph, rule, epochs=60)
    baseline = graphs.exit_accuracy(features_only, graph, "test")[-1]
    assert min(graphs.exit_accuracy(net, graph, "test")) > baseline + 0.1


def test_the_karate_club_has_its_two_leaders_as_training_nodes():
    graph = graphs.karate_club()
    assert graph.x.shape == (34, 34) and graph.train.nonzero().flatten().tolist() == [0, 33]
    assert graph.y[0] != graph.y[33]
