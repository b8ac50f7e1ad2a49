"""Full-graph training of a ``gcn`` under a rule, and every exit's node accuracy on a split.

Each step is one ``locallearn.backward`` over every node, the loss seeing only the training nodes
(the other labels are -100). Adam, as Kipf & Welling (lr 0.01, weight decay 5e-4, 200 epochs; their
decay is on the first layer only and they stop early on the validation loss, neither kept here:
every weight decays and the epochs are fixed).

Example:
    >>> from locallearn import graphs, models
    >>> family = models.create("gcn", widths=(8,), graph_kw={"nodes": 40, "classes": 2, "features": 4, "train_per_class": 5, "val": 10})
    >>> graph = family.load_graph()
    >>> net = family.build((4,), 2)
    >>> _ = train_gcn(net, graph, "local", epochs=5)
    >>> len(exit_accuracy(net, graph, "test"))
    1
"""

from __future__ import annotations

import torch

from locallearn._params import check_number
from locallearn.engine import backward, prepare
from locallearn.graphs.graph import Graph
from locallearn.net import LocalNet
from locallearn.rules import RULES


def train_gcn(net: LocalNet, graph: Graph, rule: str, *, epochs: int = 200, lr: float = 0.01,
              weight_decay: float = 5e-4) -> list[list[float]]:
    """Train ``net`` on ``graph``'s training nodes for ``epochs`` full-graph steps; returns the per-stage losses."""
    check_number(epochs, name="epochs", owner="train_gcn", low=1, integer=True)
    instance = prepare(net, RULES.create(rule))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    targets = graph.targets("train")
    net.train()
    history = []
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        history.append(backward(net, graph.x, targets, instance, optimizer=optimizer).losses)
        optimizer.step()
    return history


@torch.no_grad()
def exit_accuracy(net: LocalNet, graph: Graph, split: str) -> list[float]:
    """Every exit's accuracy on the nodes of ``split``."""
    mask = graph.mask(split)
    was = net.training
    net.eval()
    try:
        return [float((z.argmax(-1)[mask] == graph.y[mask]).double().mean()) for z in net(graph.x)]
    finally:
        net.train(was)
