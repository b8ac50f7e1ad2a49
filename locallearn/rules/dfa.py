"""``dfa``: direct feedback alignment (Nøkland 2016), the global biologically plausible baseline.

Like ``e2e`` the network learns from the last exit's cross-entropy alone, but
the error never travels back through the weights: the error ``e`` at the last
exit reaches each layer's input through its own fixed random matrix ``D_k``
(``locallearn.feedback``, ``mode="dfa"``). It is a global rule (``detach_inputs``
is False, the error crosses stage boundaries), so like ``e2e`` it runs under
the ``simultaneous`` schedule only.
"""

from __future__ import annotations

from locallearn._params import check_choice, check_number
from locallearn.feedback import attach_dfa, convert_layers
from locallearn.net import LocalNet
from locallearn.rules.base import RULES
from locallearn.rules.e2e import EndToEnd


@RULES.register("dfa")
class DirectFeedbackAlignment(EndToEnd):
    """Cross-entropy of the last exit, sent to every layer through fixed random matrices.

    Args:
        scale: multiplies the feedback matrices, drawn uniform in +-1/sqrt(classes).
        probe_heads: train the earlier heads on detached features (as ``e2e`` does) so
            every exit predicts; they take no part in the DFA signal.

    ``setup`` converts every block's ``nn.Linear`` / ``nn.Conv2d`` and the last head's
    into DFA layers (other layers with parameters raise an error naming them) and
    opens the DFA pass at the first block and closes it at the last head.

    Source: Nøkland, NeurIPS 2016, 'Direct Feedback Alignment Provides Learning in Deep Neural Networks' (no authors' code used).

    Example:
        >>> import torch
        >>> from torch.nn import functional as F
        >>> from locallearn import build_mlp
        >>> net = build_mlp((4,), (8, 8), 3)
        >>> DirectFeedbackAlignment().setup(net)
        >>> sum(F.cross_entropy(l, torch.tensor([0, 1])) for l in net(torch.randn(2, 4))).backward()
        >>> net.stages[1].block[0].feedback.shape  # error of the 3 classes -> 8 inputs
        torch.Size([3, 8])
    """

    source = "Nøkland, NeurIPS 2016, 'Direct Feedback Alignment Provides Learning in Deep Neural Networks' (no authors' code used)"

    detach_inputs = False
    changes_net = True  # DFA layers and their feedback hooks
    sequence_labels = False  # its output error is per sample, not per position
    compile_refusal = ("its feedback layers are custom autograd Functions with backward hooks that break the compiled "
                       "graph (compiling a 2-stage MLP took minutes on a CPU)")

    def __init__(self, *, scale: float = 1.0, probe_heads: bool = True) -> None:
        owner = type(self).__name__
        super().__init__(probe_heads=check_choice(probe_heads, name="probe_heads", owner=owner, choices=(False, True)))
        self.scale = check_number(scale, name="scale", owner=owner, low=0.0, low_inclusive=False)

    def setup(self, net: LocalNet) -> None:
        last = net.stages[-1].head
        for stage in net.stages:
            convert_layers(stage.block, "dfa", scale=self.scale)
        convert_layers(last, "dfa", scale=self.scale)
        attach_dfa(net.stages[0].block, last)
