"""``forward-gradient``: activity-perturbed forward gradients of local losses
(Ren, Kornblith, Liao & Hinton, ICLR 2023; forward gradients: Baydin et al. 2022).

A forward gradient replaces backprop's exact gradient by an unbiased estimate made
in forward mode only: draw a random direction ``u ~ N(0, I)``, compute the
directional derivative ``d = grad L . u`` with one Jacobian-vector product
(``torch.func.jvp``), and use ``g = d * u`` (``E[u u^T] = I``, so ``E[g] = grad L``).
Perturbing the weights makes the variance grow with the number of parameters;
Ren et al. perturb the *activities* instead (far fewer numbers) and give every
block its own local loss, so each estimate is taken over a short path.

Per stage here: ``u`` has the shape of the block's output ``z``; ``d`` is the JVP of
``z -> cross-entropy(head(z), y)`` (the stage's local loss) along ``u``; the estimate
``g_z = d * u`` (averaged over ``samples`` draws) is the error signal of the block.
No gradient flows from the loss into the block: its weights get ``J^T g_z``, the
local outer product of the estimate with the block's own input that Ren et al. use
for the weight gradient of an activity-perturbed layer (``g_z x^T`` for one linear
layer; for a block of several layers, the local product through them). The head,
a small local classifier, learns from its exact gradient on detached features.

Kept: activity perturbation, one JVP per local loss and sample, the unbiased
estimator ``(grad . u) u``, block-local losses. Not kept: the paper's LocalMixer
architecture and its many patch- and group-wise local losses (one loss per stage
here, through the stage's head), and its stop-gradient / normalisation tricks.

The stage's reported loss is its head's cross-entropy.
"""

from __future__ import annotations

import torch
from torch.func import jvp
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.rules.base import RULES, LocalRule, StageOutput


def forward_gradient(fn, z: torch.Tensor, samples: int = 1) -> torch.Tensor:
    """Unbiased forward-mode estimate of ``grad fn(z)``: the mean over ``samples`` of ``(grad fn . u) u``, ``u ~ N(0, I)``.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> z = torch.tensor([1.0, 2.0])
        >>> g = forward_gradient(lambda v: (v ** 2).sum(), z, samples=20000)
        >>> torch.allclose(g, 2 * z, atol=0.1)
        True
    """
    total = torch.zeros_like(z)
    for _ in range(samples):
        u = torch.randn_like(z)
        _, directional = jvp(fn, (z,), (u,))
        total += directional * u
    return total / samples


@RULES.register("forward-gradient")
class ForwardGradient(LocalRule):
    """Each block learns from an activity-perturbed forward-gradient estimate of its local loss.

    Args:
        samples: random directions per stage and step (their estimates are averaged).

    Example:
        >>> ForwardGradient(samples=4).get_params()
        {'samples': 4}
    """

    detach_inputs = True

    def __init__(self, *, samples: int = 1) -> None:
        self.samples = check_number(samples, name="samples", owner="ForwardGradient", low=1, integer=True)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        z = out.h_out
        head = out.stage.head
        with torch.no_grad():
            g_z = forward_gradient(lambda v: F.cross_entropy(head(v), y), z.detach(), self.samples)
        surrogate = (z * g_z).sum()  # gradient J^T g_z into the block's own weights, value dropped below
        head_loss = F.cross_entropy(head(z.detach()), y)
        return head_loss + (surrogate - surrogate.detach())
