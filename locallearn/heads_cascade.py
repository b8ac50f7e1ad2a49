"""Cascade connections between exits (Zero Time Waste, Wołczyk et al., NeurIPS 2021; authors' code
gmum/Zero-Time-Waste): the head of exit k also reads the previous exit's logits.

In the authors' ``InternalClassifier`` (``ztw_cv_original/aux_funcs.py``, run with ``--stacking
--detach_prev``, ``--detach_norm layernorm`` on their ResNet-50) exit k's classifier is one linear layer
on the concatenation ``[pool(h_k), LN(z_{k-1}.detach())]``: the previous exit's logits, cut from the
graph (no gradient flows back through the cascade) and layer-normalised. A linear layer on a
concatenation is the sum of two linear maps, so here

    z_k = base_k(h_k) + V_k LN(z_{k-1}.detach()),

with ``base_k`` the stage's own head (its bias is the concatenated layer's bias) and ``V_k`` a
bias-free ``C x C`` map. The first exit has no predecessor and keeps its plain head; so does the
backbone's own last classifier (the authors cascade the internal classifiers only).

A head that cascades says so with ``takes_previous = True``; :func:`head_logits` is how the network's
forward pass, the training engine and the early-exit runner call any head, handing the previous exit's
logits to those that take them. Departures: ``base_k`` is whatever head the stage has (the authors'
internal classifiers pool with SDN's mixed max/avg pooling before the linear layer); the concatenated
layer's two parts are initialised separately (PyTorch's default for each).

Example:
    >>> import torch
    >>> from torch import nn
    >>> head = CascadeHead(nn.Linear(8, 3), num_classes=3)
    >>> head(torch.zeros(2, 8), torch.randn(2, 3)).shape
    torch.Size([2, 3])
    >>> head_logits(nn.Linear(8, 3), torch.zeros(2, 8), None).shape  # a plain head ignores the previous exit
    torch.Size([2, 3])
"""

from __future__ import annotations

import torch
from torch import nn

from locallearn._params import check_choice, check_number


class CascadeHead(nn.Module):
    """``base(h) + link(LN(previous.detach()))``: a stage's head plus ZTW's cascade connection from the
    previous exit's logits (see the module docstring). ``layer_norm=False``: no LayerNorm on them (the
    authors' CIFAR runs, without ``--detach_norm``)."""

    takes_previous = True
    source = "Wołczyk, Wójcik, Bałazy, Podolak, Tabor, Śmieja & Trzciński, NeurIPS 2021 (Zero Time Waste; gmum/Zero-Time-Waste)"

    def __init__(self, base: nn.Module, *, num_classes: int, layer_norm: bool = True) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(f"CascadeHead needs the stage's head (an nn.Module) as its base. Got {type(base).__name__} instead.")
        self.num_classes = check_number(num_classes, name="num_classes", owner="CascadeHead", low=1, integer=True)
        self.layer_norm = check_choice(layer_norm, name="layer_norm", owner="CascadeHead", choices=(True, False))
        self.base = base
        self.norm = nn.LayerNorm(num_classes) if layer_norm else nn.Identity()
        self.link = nn.Linear(num_classes, num_classes, bias=False)

    def forward(self, h: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        if previous is None:
            raise ValueError(
                "A cascade head (Zero Time Waste) needs the previous exit's logits: run the stages in order from the "
                "first (LocalNet.forward, locallearn.backward or a schedule that trains every stage each step)."
            )
        return self.base(h) + self.link(self.norm(previous.detach()))


def head_logits(head: nn.Module, features: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """The head's logits for ``features``; a head with ``takes_previous`` also gets ``previous``, the logits
    of the exit before it (``None`` at the first exit, or where the earlier stages did not run)."""
    if getattr(head, "takes_previous", False):
        return head(features, previous)
    return head(features)


def add_cascade(stages: list, *, num_classes: int, layer_norm: bool = True) -> None:
    """Put a :class:`CascadeHead` around the heads of exits ``1 .. K-2`` (not the first exit's, not the last
    classifier's), once: a head that cascades already is left alone."""
    for stage in stages[1:-1]:
        if not getattr(stage.head, "takes_previous", False):
            stage.head = CascadeHead(stage.head, num_classes=num_classes, layer_norm=layer_norm)
