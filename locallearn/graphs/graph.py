"""Small graphs for node classification, offline: a stochastic block model the package generates, and Zachary's
karate club (shipped by ``networkx``, which torch itself depends on).

A ``Graph`` holds node features ``x`` (N, F), labels ``y`` (N,), the renormalised adjacency
``D^-1/2 (A + I) D^-1/2`` of Kipf & Welling (2017) as a dense (N, N) tensor, and train / val /
test node masks. ``graph.targets(split)`` are the labels with every node outside the split set to
-100, the index ``cross_entropy`` ignores: the whole graph is one batch (transductive learning),
and only the split's nodes count in a loss or an accuracy.

Example:
    >>> g = GRAPHS.get("sbm")(nodes=40, classes=2, features=4, train_per_class=5, val=10, seed=0)
    >>> g.x.shape, g.adjacency.shape, int(g.train.sum()), int((g.targets("train") >= 0).sum())
    (torch.Size([40, 4]), torch.Size([40, 40]), 10, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from locallearn._params import check_number
from locallearn._registry import Registry

IGNORE = -100  # cross_entropy's ignore_index


@dataclass
class Graph:
    """Node features, labels, renormalised adjacency and split masks of one graph."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    adjacency: torch.Tensor
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    num_classes: int

    def mask(self, split: str) -> torch.Tensor:
        if split not in ("train", "val", "test"):
            raise ValueError(f"A graph has node splits 'train', 'val' and 'test'; got {split!r}.")
        return getattr(self, split)

    def targets(self, split: str) -> torch.Tensor:
        """The labels of the split's nodes, ``-100`` (ignored by cross-entropy) everywhere else."""
        return torch.where(self.mask(split), self.y, torch.full_like(self.y, IGNORE))


def renormalised_adjacency(edges: torch.Tensor, nodes: int) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` for the undirected ``edges`` (2, E) of ``nodes`` nodes (Kipf & Welling, eq. 2).

    Example:
        >>> renormalised_adjacency(torch.tensor([[0], [1]]), 2)
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    a = torch.zeros(nodes, nodes)
    a[edges[0], edges[1]] = 1.0
    a = torch.maximum(a, a.t()) + torch.eye(nodes)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def _split(y: torch.Tensor, classes: int, train_per_class: int, val: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Planetoid-style masks: ``train_per_class`` nodes of each class, then ``val`` nodes, the rest test."""
    order = torch.randperm(len(y), generator=generator)
    train = torch.zeros(len(y), dtype=torch.bool)
    for c in range(classes):
        train[order[y[order] == c][:train_per_class]] = True
    rest = order[~train[order]]
    val_mask = torch.zeros_like(train)
    val_mask[rest[:val]] = True
    return train, val_mask, ~(train | val_mask)


GRAPHS: Registry = Registry("graph")


@GRAPHS.register("sbm")
def stochastic_block_model(
    *, nodes: int = 600, classes: int = 4, p_in: float = 0.03, p_out: float = 0.006, features: int = 16,
    signal: float = 0.5, train_per_class: int = 20, val: int = 100, seed: int = 0,
) -> Graph:
    """A contextual stochastic block model: ``classes`` equal blocks, an edge with probability ``p_in`` inside a
    block and ``p_out`` across; node features are the class mean (drawn from N(0, signal^2 I)) plus N(0, I)
    noise, so neither the features nor the edges alone give the labels. Repeatable from ``seed``."""
    owner = "stochastic_block_model"
    for name, value in (("nodes", nodes), ("classes", classes), ("features", features), ("train_per_class", train_per_class)):
        check_number(value, name=name, owner=owner, low=1, integer=True)
    for name, value in (("p_in", p_in), ("p_out", p_out)):
        check_number(value, name=name, owner=owner, low=0.0, high=1.0)
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(nodes) % classes
    y = y[torch.randperm(nodes, generator=generator)]
    same = y[:, None] == y[None, :]
    draw = torch.rand(nodes, nodes, generator=generator) < torch.where(same, p_in, p_out)
    edges = torch.triu(draw, diagonal=1).nonzero().t()
    means = signal * torch.randn(classes, features, generator=generator)
    x = means[y] + torch.randn(nodes, features, generator=generator)
    return Graph("sbm", x, y, renormalised_adjacency(edges, nodes),
                 *_split(y, classes, train_per_class, val, generator), num_classes=classes)


@GRAPHS.register("karate")
def karate_club(*, seed: int = 0) -> Graph:
    """Zachary's karate club (34 members, the two clubs after the split as labels), as ``networkx`` ships it.
    Features are one-hot node identities (Kipf & Welling's karate demonstration); the two leaders (nodes 0
    and 33) are the labelled training nodes, 4 random others the validation nodes, the rest the test."""
    import networkx

    graph = networkx.karate_club_graph()
    y = torch.tensor([0 if graph.nodes[n]["club"] == "Mr. Hi" else 1 for n in graph.nodes])
    edges = torch.tensor(list(graph.edges)).t()
    train = torch.zeros(34, dtype=torch.bool)
    train[[0, 33]] = True
    others = torch.arange(1, 33)[torch.randperm(32, generator=torch.Generator().manual_seed(seed))]
    val = torch.zeros_like(train)
    val[others[:4]] = True
    return Graph("karate", torch.eye(34), y, renormalised_adjacency(edges, 34), train, val, ~(train | val), num_classes=2)
