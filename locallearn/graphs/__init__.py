"""Graphs for node classification (a generated stochastic block model, Zachary's karate club) and full-graph
training of a ``gcn`` with an exit after every layer.

Example:
    >>> from locallearn import graphs
    >>> graphs.GRAPHS.names()
    ['karate', 'sbm']
"""

from locallearn.graphs.graph import GRAPHS, Graph, karate_club, renormalised_adjacency, stochastic_block_model
from locallearn.graphs.train import exit_accuracy, train_gcn

__all__ = ["GRAPHS", "Graph", "exit_accuracy", "karate_club", "renormalised_adjacency", "stochastic_block_model", "train_gcn"]
