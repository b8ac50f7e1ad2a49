"""``dtp``: difference target propagation (Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015).

Each layer ``f_i`` (one stage's block) gets a learned approximate inverse ``g_i`` from its output
back to its input. No error is backpropagated through the network; instead each layer is given a
*target* and learns to move its output towards it:

* the top target is one gradient step on the output loss: ``h_hat_L = h_L - eta * dL/dh_L``
  (``L`` the last exit's cross-entropy, summed over the batch so ``eta`` is per sample);
* targets go down with the difference correction: ``h_hat_{i-1} = h_{i-1} + g_i(h_hat_i) - g_i(h_i)``
  (so a layer whose output already equals its target passes an unchanged target down, however
  imperfect ``g_i`` is);
* layer ``i`` minimises ``||f_i(h_{i-1}) - h_hat_i||^2`` (squared error summed over features,
  averaged over the batch), with its input detached;
* the inverse ``g_i`` minimises the reconstruction loss on noisy activations,
  ``||g_i(f_i(h_{i-1} + eps)) - (h_{i-1} + eps)||^2``, ``eps ~ N(0, sigma^2)``, ``f_i`` held fixed.

The last stage learns from its own head's cross-entropy directly (the paper's top layer learns
from the loss); the first stage has no inverse (nothing is propagated below it). The variant
with a difference reconstruction loss (DRL, Meulemans, Carzaniga, Suykens, Sacramento & Grewe,
NeurIPS 2020) is not implemented.

Departures (ours): ``g_i`` is ``Linear`` followed by the activation of the layer below (the paper
uses ``tanh`` throughout); ``eta = 0.5`` and ``sigma = 0.1`` are our defaults, not tuned values
from the paper; each stage's head is trained as a probe on detached features so every exit predicts.
To compute stage ``i``'s target the rule runs the later blocks forward again without gradients
(a cost quadratic in the number of stages; this rule is for small MLPs). Blocks must be MLP
layers (``Linear``, ``Flatten``, ``Dropout``, parameter-free activations): ``setup`` refuses any other
block (a ``Conv2d``, a ``LayerNorm``, a transformer block) with a one-line message.

Example:
    >>> import torch
    >>> from locallearn import build_mlp
    >>> net = build_mlp((4,), (8, 6), 3)
    >>> DifferenceTargetPropagation().setup(net)
    >>> net.stages[1].aux["dtp"](torch.zeros(2, 6)).shape  # g_2: 6 features back to 8
    torch.Size([2, 8])
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.net import LocalNet, Stage
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.tokens import is_token_block


def propagate_target(h_below: torch.Tensor, h: torch.Tensor, h_hat: torch.Tensor, inverse: nn.Module) -> torch.Tensor:
    """The difference-corrected target of the layer below: ``h_{i-1} + g_i(h_hat_i) - g_i(h_i)``.

    Example:
        >>> g = nn.Linear(3, 2)
        >>> h_below, h = torch.randn(4, 2), torch.randn(4, 3)
        >>> torch.allclose(propagate_target(h_below, h, h, g), h_below)  # no error above, no change below
        True
    """
    return h_below + inverse(h_hat) - inverse(h)


_ABOVE = "_dtp_stages_above"


def _stages_above(stage: Stage) -> tuple[Stage, ...]:
    if _ABOVE not in stage.__dict__:
        raise RuntimeError("dtp: run setup(net) first (the trainer does), so every stage has its inverse.")
    return stage.__dict__[_ABOVE]


def _squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).sum(1).mean()


def _linears(stage: Stage, index: int) -> list[nn.Linear]:
    """The block's Linear layers; a block holding anything but Linear, Flatten, Dropout and
    parameter-free activations is refused in one line."""
    for module in stage.block.modules():
        plain = isinstance(module, (nn.Linear, nn.Flatten, nn.Dropout, nn.Sequential)) or not list(module.parameters())
        if not plain or isinstance(module, nn.Conv2d) or is_token_block(module):
            raise ValueError(
                f"dtp trains MLP blocks only (Linear layers and activations); stage {index}'s block holds a "
                f"{type(module).__name__}. Use build_mlp."
            )
    linears = [m for m in stage.block.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"dtp needs a Linear layer in every block; stage {index}'s block has none.")
    return linears


def _activation(stage: Stage) -> list[nn.Module]:
    """A copy of the last activation of ``stage``'s block (what its output passed through), if any."""
    for module in reversed(list(stage.block.modules())):
        if isinstance(module, nn.Linear):
            return []
        if not isinstance(module, (nn.Sequential, nn.Dropout, nn.Flatten)) and not list(module.parameters()):
            return [copy.deepcopy(module)]
    return []


@RULES.register("dtp")
class DifferenceTargetPropagation(LocalRule):
    """Difference target propagation with learned inverses (Lee et al. 2015).

    Args:
        eta: step of the top target along the output loss's negative gradient.
        sigma: standard deviation of the noise the inverses are trained on.

    Example:
        >>> DifferenceTargetPropagation(eta=0.2).get_params()
        {'eta': 0.2, 'sigma': 0.1}

    Source: Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015 (difference target propagation).
    """

    source = "Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015 (difference target propagation)"

    detach_inputs = True
    flat_only: ClassVar[bool] = True  # refuses conv blocks in setup

    def __init__(self, *, eta: float = 0.5, sigma: float = 0.1) -> None:
        owner = "DifferenceTargetPropagation"
        self.eta = check_number(eta, name="eta", owner=owner, low=0.0, low_inclusive=False)
        self.sigma = check_number(sigma, name="sigma", owner=owner, low=0.0)

    def setup(self, net: LocalNet) -> None:
        linears = [_linears(stage, k) for k, stage in enumerate(net.stages)]
        for k, stage in enumerate(net.stages):
            # a plain (unregistered) reference to the stages above, which a deepcopy of the net remaps
            stage.__dict__[_ABOVE] = tuple(net.stages[k + 1:])
            if k == 0:
                continue
            if "dtp" in stage.aux:
                continue
            inverse = nn.Sequential(nn.Linear(linears[k][-1].out_features, linears[k][0].in_features), *_activation(net.stages[k - 1]))
            stage.aux["dtp"] = inverse.to(linears[k][0].weight.device)

    def target(self, stage: Stage, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The target ``h_hat`` of ``stage`` (not the last) whose output is ``h``: forward the later
        blocks, step the top output along the loss's negative gradient, and propagate it down."""
        above = _stages_above(stage)
        with torch.no_grad():
            outputs = [h.detach()]
            for later in above:
                outputs.append(later.block(outputs[-1]))
        top = outputs[-1].clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(above[-1].head(top), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, top)
        with torch.no_grad():
            h_hat = outputs[-1] - self.eta * grad
            for j in range(len(above), 0, -1):
                h_hat = propagate_target(outputs[j - 1], outputs[j], h_hat, above[j - 1].aux["dtp"])
        return h_hat

    def inverse_loss(self, stage: Stage, h_in: torch.Tensor) -> torch.Tensor:
        """``||g(f(h + eps)) - (h + eps)||^2`` with ``f`` fixed: trains the inverse only."""
        noisy = h_in.detach() + self.sigma * torch.randn_like(h_in)
        with torch.no_grad():
            forward = stage.block(noisy)
        return _squared_error(stage.aux["dtp"](forward), noisy)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        _stages_above(out.stage)  # refuses a net that was not set up
        if out.is_last:
            loss = F.cross_entropy(out.logits, y)
        else:
            loss = _squared_error(out.h_out, self.target(out.stage, out.h_out, y))
            loss = loss + F.cross_entropy(out.stage.head(out.h_out.detach()), y)
        if out.index > 0:
            loss = loss + self.inverse_loss(out.stage, out.h_in)
        return loss
