"""``fa-heads``: fixed random heads with feedback alignment (Mostafa, Ramesh & Cauwenberghs 2018).

Each stage learns from the cross-entropy of its own head, as in ``local``, but
the head is a fixed random projection ``G`` (not trained) and the head's error
reaches the block through a separate fixed random matrix ``B`` of the same
shape in place of ``G``'s transpose. Every ``nn.Linear`` / ``nn.Conv2d`` of a
head (linear, MLP or conv head) becomes an FA layer (``locallearn.feedback``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.feedback import FAConv2d, FALinear, convert_layers
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput


@RULES.register("fa-heads")
class FixedRandomHeads(LocalRule):
    """Local cross-entropy through fixed random heads whose backward uses their own fixed matrix B.

    Args:
        feedback: ``"same"`` (B is a copy of G: Mostafa et al.'s fixed random classifier, whose
            fixed weights serve both ways; with a frozen head this is exactly ``local`` with a
            frozen head) or ``"random"`` (B drawn independently of G). A random B needs
            ``train_head=True``: feedback alignment works because the forward weights above
            a layer learn to align with B, and a frozen G never does, so the logits move along
            ``-G B^T e``, uncorrelated with the error (on 8x8 digits the exits stay at chance).
        train_head: also train the head (its weight gradient is the usual one; B stays fixed).
        head_scale: multiplies G, drawn from the layer's default init (uniform in +-1/sqrt(fan_in)).
        feedback_scale: multiplies B, drawn from the same distribution (ignored with ``feedback="same"``).

    ``setup`` turns each head's layers into FA layers (once per net, as every setup runs), so a
    second trainer on the same net changes nothing.

    Source: Mostafa, Ramesh & Cauwenberghs, Frontiers in Neuroscience 2018 (local errors through fixed random classifiers); feedback alignment: Lillicrap et al., Nature Communications 2016.

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8, 8), 3)
        >>> rule = FixedRandomHeads(feedback_scale=0.5)
        >>> rule.setup(net)
        >>> type(net.stages[0].head.linear).__name__, net.stages[0].head.linear.weight.requires_grad
        ('FALinear', False)
    """

    source = 'Mostafa, Ramesh & Cauwenberghs, Frontiers in Neuroscience 2018 (local errors through fixed random classifiers); feedback alignment: Lillicrap et al., Nature Communications 2016'

    detach_inputs = True
    changes_net = True  # turns the heads' layers into FA layers

    def __init__(
        self, *, feedback: str = "same", train_head: bool = False, head_scale: float = 1.0, feedback_scale: float = 1.0
    ) -> None:
        owner = type(self).__name__
        self.feedback = check_choice(feedback, name="feedback", owner=owner, choices=("random", "same"))
        self.train_head = check_choice(train_head, name="train_head", owner=owner, choices=(False, True))
        self.head_scale = check_number(head_scale, name="head_scale", owner=owner, low=0.0, low_inclusive=False)
        self.feedback_scale = check_number(feedback_scale, name="feedback_scale", owner=owner, low=0.0, low_inclusive=False)

    def setup(self, net: LocalNet) -> None:
        for stage in net.stages:
            head = stage.head
            convert_layers(head, "fa", scale=self.feedback_scale)
            with torch.no_grad():
                for layer in head.modules():
                    if isinstance(layer, (FALinear, FAConv2d)):
                        layer.weight.mul_(self.head_scale)
                        if self.feedback == "same":
                            layer.feedback.copy_(layer.weight)
            if not self.train_head:
                head.requires_grad_(False)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.logits, y)
