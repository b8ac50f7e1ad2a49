"""``forward-gradient``: activity-perturbed forward gradients of local losses
(Ren, Kornblith, Liao & Hinton, ICLR 2023; forward gradients: Baydin et al. 2022).

A forward gradient replaces backprop's exact gradient by an unbiased estimate made
in forward mode only: draw a random direction ``u ~ N(0, I)``, compute the
directional derivative ``d = grad L . u`` with one Jacobian-vector product
(``torch.func.jvp``), and use ``g = d * u`` (``E[u u^T] = I``, so ``E[g] = grad L``).
Perturbing the weights makes the variance grow with the number of parameters;
Ren et al. perturb the *activities* instead (far fewer numbers) and give every
block its own local loss, so each estimate is taken over a short path.

Per stage here (the default, ``perturbation="example"``, as Ren et al.'s code): every
example ``i`` of the batch gets its own direction ``u_i ~ N(0, I)`` of the shape of its
block output ``z_i``; one JVP of ``z -> (l_1(z_1), ..., l_N(z_N))`` (the per-example
cross-entropies of the stage's head) along ``u`` gives every example's directional
derivative ``d_i = grad l_i . u_i`` at once, and the estimate of the gradient of the
batch-mean loss is ``g_i = d_i u_i / N``. Each row's estimate then carries only its own
example's noise. ``perturbation="batch"`` is the cheaper-looking departure this package
used before: one scalar ``d = grad L . u`` of the batch-mean loss ``L`` for the whole batch,
``g = d u``; every example's estimate then carries every other example's noise (its squared
error grows with the batch size), and it learns far worse (digits, issue 23).

``g_z`` (averaged over ``samples`` draws) is the error signal of the block. No gradient
flows from the loss into the block: its weights get ``J^T g_z``, the local outer product of
the estimate with the block's own input that Ren et al. use for the weight gradient of an
activity-perturbed layer (``g_z x^T`` for one linear layer; for a block of several layers,
the local product through them). The head, a small local classifier, learns from its exact
gradient on detached features.

Kept: activity perturbation, one direction per example, one JVP per local loss and sample,
the unbiased estimator ``(grad . u) u``, block-local losses. Not kept: the paper's LocalMixer
architecture and its many patch- and group-wise local losses (one loss per stage here,
through the stage's head), and its stop-gradient / normalisation tricks.

The stage's reported loss is its head's cross-entropy. Source: Ren, Kornblith, Liao & Hinton,
"Scaling Forward Gradient With Local Losses", ICLR 2023; authors' code in
google-research/google-research ``local_forward_gradient``.
"""

from __future__ import annotations

import torch
from torch.func import jvp
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
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


def per_example_forward_gradient(fn, z: torch.Tensor, samples: int = 1) -> torch.Tensor:
    """Unbiased forward-mode estimate of ``grad mean(fn(z))`` with one direction per example (row of ``z``).

    ``fn`` maps ``z`` (``N`` rows) to ``N`` per-example losses, row ``i``'s depending on row ``i``
    only. One JVP along ``u`` (one ``u_i ~ N(0, I)`` per row) gives every ``d_i = grad l_i . u_i``;
    the estimate is row-wise ``d_i u_i / N``, averaged over ``samples`` draws.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> z = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
        >>> g = per_example_forward_gradient(lambda v: (v ** 2).sum(1), z, samples=20000)
        >>> torch.allclose(g, 2 * z / 2, atol=0.1)  # grad of the mean over the 2 rows
        True
    """
    total = torch.zeros_like(z)
    for _ in range(samples):
        u = torch.randn_like(z)
        _, directional = jvp(fn, (z,), (u,))
        total += directional.reshape(-1, *([1] * (z.dim() - 1))) * u
    return total / (samples * len(z))


PERTURBATIONS = ("example", "batch")


@RULES.register("forward-gradient")
class ForwardGradient(LocalRule):
    """Each block learns from an activity-perturbed forward-gradient estimate of its local loss.

    Args:
        samples: random directions per example (or per batch), stage and step; their estimates are averaged.
        perturbation: ``"example"`` (default, Ren et al.): one direction per example, each
            example's directional derivative of its own loss; ``"batch"``: one direction and one
            directional derivative of the batch-mean loss for the whole batch (a named departure,
            kept to show the difference).

    Example:
        >>> ForwardGradient(samples=4).get_params()
        {'samples': 4, 'perturbation': 'example'}
    """

    detach_inputs = True
    source = "Ren, Kornblith, Liao & Hinton, ICLR 2023 (google-research/local_forward_gradient)"

    def __init__(self, *, samples: int = 1, perturbation: str = "example") -> None:
        self.samples = check_number(samples, name="samples", owner="ForwardGradient", low=1, integer=True)
        self.perturbation = check_choice(perturbation, name="perturbation", owner="ForwardGradient", choices=PERTURBATIONS)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        z = out.h_out
        head = out.stage.head
        with torch.no_grad():
            if self.perturbation == "example":
                g_z = per_example_forward_gradient(lambda v: F.cross_entropy(head(v), y, reduction="none"), z.detach(), self.samples)
            else:
                g_z = forward_gradient(lambda v: F.cross_entropy(head(v), y), z.detach(), self.samples)
        surrogate = (z * g_z).sum()  # gradient J^T g_z into the block's own weights, value dropped below
        head_loss = F.cross_entropy(head(z.detach()), y)
        return head_loss + (surrogate - surrogate.detach())
