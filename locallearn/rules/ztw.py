"""``ztw``: Zero Time Waste's training of the internal classifiers (Wołczyk et al., NeurIPS 2021).

ZTW attaches exits to a trained backbone and trains only them, the backbone frozen (the authors'
``sdn_ic`` step, "IC-only" training as in Shallow-Deep Networks, ``ztw_cv_original/train_networks.py``):
every block and the backbone's own last classifier stop learning, and the internal classifiers
(exits ``0 .. K-2``) learn from the sum of their cross-entropies. The frozen blocks run in eval mode while
the heads learn (a departure: the authors' loop calls ``model.train()`` on the whole model; here BatchNorm's
running statistics stay as the backbone's training left them, so its last exit is exactly unchanged).
With ``cascade=True`` (the authors' ``--stacking --detach_prev``) exits ``1 .. K-2`` read the previous
exit's detached logits
(``locallearn.heads_cascade``). The ensemble of exits, ZTW's second part, is an exit policy fitted
afterwards on the exits' logits: ``ztw-ensemble`` (``locallearn.exits.policies.ensemble``).

The recipe: train the backbone first (e.g. ``rule=EndToEnd(probe_heads=False)``), load its weights into a
fresh net of the same shape (``ztw`` changes the net, so it refuses one another rule was prepared on, a
deep copy included) and train that under ``ztw``, then fit ``ztw-ensemble`` on the training split's exit
logits.

Example:
    >>> import locallearn as ll
    >>> net = ll.build_mlp((4,), (8, 8, 8), 3)
    >>> rule = ll.prepare(net, "ztw")
    >>> [type(s.head).__name__ for s in net.stages], any(p.requires_grad for p in net.stages[2].parameters())
    (['LinearHead', 'CascadeHead', 'LinearHead'], False)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice
from locallearn.heads_cascade import add_cascade
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput


def _num_classes(head: nn.Module) -> int:
    """The width of a head's output: its last layer with ``out_features`` (a Linear)."""
    widths = [m.out_features for m in head.modules() if isinstance(getattr(m, "out_features", None), int)]
    if not widths:
        raise ValueError(f"ztw cannot tell how many classes a {type(head).__name__} head gives (it has no Linear layer).")
    return widths[-1]


@RULES.register("ztw")
class ZeroTimeWaste(LocalRule):
    """Train the internal classifiers of a frozen backbone, with ZTW's cascade connections.

    ``cascade=False`` trains plain internal classifiers (Shallow-Deep Networks' IC-only training);
    ``layer_norm`` normalises the cascaded logits (the authors' ``--detach_norm layernorm``).

    Source: Wołczyk, Wójcik, Bałazy, Podolak, Tabor, Śmieja & Trzciński, NeurIPS 2021 (Zero Time Waste; gmum/Zero-Time-Waste).
    """

    source = "Wołczyk, Wójcik, Bałazy, Podolak, Tabor, Śmieja & Trzciński, NeurIPS 2021 (Zero Time Waste; gmum/Zero-Time-Waste)"

    # Every exit in one forward pass, in order (a cascade head reads the exit before it): the schedules that
    # feed stages from caches or buffers, or one stage per process, refuse it as they refuse global rules.
    # The frozen blocks carry no gradient and the cascade is detached, so each head still learns from its
    # own loss alone.
    detach_inputs = False
    changes_net = True  # freezes the backbone, wraps the internal classifiers' heads

    def __init__(self, *, cascade: bool = True, layer_norm: bool = True) -> None:
        self.cascade = check_choice(cascade, name="cascade", owner="ZeroTimeWaste", choices=(True, False))
        self.layer_norm = check_choice(layer_norm, name="layer_norm", owner="ZeroTimeWaste", choices=(True, False))

    def setup(self, net: LocalNet) -> None:
        stages = list(net.stages)
        for module in [s.block for s in stages] + [stages[-1].head]:
            module.requires_grad_(False)
        if self.cascade:
            add_cascade(stages, num_classes=_num_classes(stages[-1].head), layer_norm=self.layer_norm)

    def block_forward(self, block: nn.Module, h_in: torch.Tensor) -> torch.Tensor:
        """The frozen block in eval mode: BatchNorm's running statistics stay as trained and dropout is off, so
        the heads learn on the features they will see at inference and the backbone's last exit is unchanged."""
        was_training = block.training
        block.eval()
        try:
            return block(h_in)
        finally:
            block.train(was_training)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor | None:
        if out.is_last:
            return None  # the backbone's own classifier stays as trained
        return F.cross_entropy(out.logits, y)
