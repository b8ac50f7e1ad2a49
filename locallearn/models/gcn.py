"""``gcn``: a graph convolutional network (Kipf & Welling, ICLR 2017) with a node-level exit after every layer.

Layer ``k`` is ``H_k = ReLU(A_hat dropout(H_{k-1}) W_k)`` with ``A_hat = D^-1/2 (A + I) D^-1/2`` the
renormalised adjacency of the graph (a buffer, built from the named graph of ``locallearn.graphs``);
each stage is one layer and its head reads every node's features out (``linear`` by default). The
whole graph is one batch: the input is the ``(N, F)`` node features in the graph's node order, every
exit gives ``(N, classes)`` logits, and the labels are -100 outside the nodes a loss should see
(``Graph.targets``). Departure from the paper: their last layer is itself a graph convolution to the
classes with a softmax; here every layer is followed by a per-node read-out, so that each layer is
an exit (a 2-stage net propagates twice, as theirs, with one more nonlinearity before the read-out).

Example:
    >>> import torch
    >>> from locallearn import models
    >>> family = models.create("gcn", widths=(8, 8), graph_kw={"nodes": 30, "classes": 3, "features": 5})
    >>> net = family.build((5,), 3)
    >>> x, _ = family.example_batch(0, 3, torch.Generator().manual_seed(0))
    >>> [tuple(z.shape) for z in net(x)]
    [(30, 3), (30, 3)]
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from locallearn._params import check_number
from locallearn.graphs.graph import GRAPHS, Graph
from locallearn.heads import make_head
from locallearn.models.base import MODELS, ModelFamily
from locallearn.net import LocalNet, Stage


class GraphConv(nn.Module):
    """``ReLU(A_hat dropout(H) W)`` over every node of one fixed graph (Kipf & Welling's layer, eq. 2)."""

    def __init__(self, adjacency: torch.Tensor, in_features: int, out_features: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, out_features)
        self.act = nn.ReLU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[0] != self.adjacency.shape[0]:
            raise ValueError(f"A GCN layer takes every node of its graph at once: {self.adjacency.shape[0]} rows; got {h.shape[0]}.")
        return self.act(self.adjacency @ self.linear(self.dropout(h)))


@MODELS.register("gcn")
class GCN(ModelFamily):
    """A GCN on the graph ``graph`` (built with ``graph_kw``); ``widths`` gives one stage per layer."""

    default_head = "linear"
    tiny_input_shape = (5,)

    def __init__(
        self, *, widths: Sequence[int] = (32, 32, 32), dropout: float = 0.5, graph: str = "sbm",
        graph_kw: dict[str, Any] | None = None, head: str | None = None, head_kw: dict[str, Any] | None = None,
    ) -> None:
        self.widths = tuple(check_number(w, name="widths", owner="GCN", low=1, integer=True) for w in widths)
        if not self.widths:
            raise ValueError("The 'widths' parameter of GCN must list at least one layer width. Got () instead.")
        self.dropout = check_number(dropout, name="dropout", owner="GCN", low=0.0, high=1.0)
        GRAPHS.get(graph)  # an unknown name lists the known graphs now, not at build time
        self.graph, self.graph_kw = graph, graph_kw
        self.head, self.head_kw = head, head_kw

    def load_graph(self) -> Graph:
        """The graph this family is built on (repeatable: the same name and options give the same graph)."""
        return GRAPHS.get(self.graph)(**(self.graph_kw or {}))

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        graph = self.load_graph()
        if tuple(input_shape) != tuple(graph.x.shape[1:]):
            raise ValueError(f"gcn on graph {self.graph!r} takes node features of shape {tuple(graph.x.shape[1:])}; "
                             f"got input shape {tuple(input_shape)}.")
        stages, width = [], input_shape[0]
        for out in self.widths:
            block = GraphConv(graph.adjacency, width, out, dropout=self.dropout)
            stages.append(Stage(block, make_head(self.head or self.default_head, (out,), num_classes, **(self.head_kw or {}))))
            width = out
        return LocalNet(stages, input_shape=input_shape, probe_rows=len(graph.x))  # a GCN layer takes every node at once

    def num_stages(self) -> int:
        return len(self.widths)

    def describe(self) -> str:
        return f"gcn {'-'.join(map(str, self.widths))} on {self.graph}"

    @classmethod
    def tiny(cls, stages: int) -> GCN:
        return cls(widths=(6,) * stages, dropout=0.0, graph_kw={"nodes": 12, "classes": 3, "features": 5, "train_per_class": 2, "val": 2})

    def example_batch(self, n: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole graph (a GCN's batch is every node; ``n`` is ignored) with random labels."""
        graph = self.load_graph()
        return graph.x, torch.randint(0, num_classes, (len(graph.x),), generator=generator)
