"""``dtp``: difference target propagation (Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015).

Each layer ``f_i`` (one stage's block) gets a learned approximate inverse ``g_i`` from its output
back to its input. No error is backpropagated through the network; instead each layer is given a
*target* and learns to move its output towards it:

* the top target is one gradient step on the output loss: ``h_hat_L = h_L - eta * dL/dh_L``
  (``L`` the last exit's cross-entropy averaged over the batch, as the authors' ``NLL``, so a sample's
  step is ``eta / batch size``; ``reduction="sum"`` makes ``eta`` the step of each sample whatever the
  batch size);
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

Defaults from the authors' code (donghyunlee/dtp ``conti_dtp.py``, the continuous 7x240 tanh MNIST
net): ``eta = 0.3277`` (their ``__lr0``, 0.327736) on the batch-mean loss, ``sigma = 0.3598`` (their
``__c``, 0.359830), both rounded to 4 digits.

Convolutional blocks: Bartunov, Santoro, Richards, Marris, Hinton & Lillicrap (NeurIPS 2018) scaled
DTP to networks of convolution-shaped receptive fields (locally connected, untied weights); their
text on how those inverses are built was not available to check here. For weight-shared conv
blocks the inverse of a block from ``C_in`` to ``C_out`` channels mirrors its first convolution
with a transposed convolution from ``C_out`` back to ``C_in`` channels (same kernel and padding,
stride 1), preceded by nearest upsampling to the input's spatial size where the block pooled or
strode; this is how the DTP code of Ernoult, Normandin, Moudgil, Spinney, Belilovsky, Rish,
Richards & Bengio (ICML 2022, ``ernoult/scalingDTP``, ``backward_layers.invert``) builds the
inverse of a convolution (``ConvTranspose2d``) and of a pooling layer (``Upsample``).

Departures (ours): ``g_i`` is one layer (``Linear``, or upsampling and one transposed convolution)
followed by the activation of the layer below (the paper uses ``tanh`` throughout), whatever the
depth of the block it inverts (a ResNet stage of several residual blocks gets the same one-layer
inverse, not a mirror of each block); upsampling is nearest-neighbour also where the block
max-pooled (scalingDTP upsamples after average pooling); one optimiser trains the inverses and the
layers together every batch (the authors train the inverses over a whole epoch first, then the
layers, with RMSprop at two learning rates, 0.0050 and 0.0149); each stage's head is trained as a
probe on detached features so every exit predicts. To compute stage ``i``'s target the rule runs the later blocks
forward again without gradients (a cost quadratic in the number of stages), with their
BatchNorm running statistics left untouched by these extra passes. Blocks may hold ``Linear``,
``Conv2d`` and ``BatchNorm`` layers, pooling, ``Flatten``, ``Dropout`` and parameter-free
activations (a CIFAR ResNet's residual blocks are made of these); ``setup`` refuses any other
layer (a ``LayerNorm``, a transformer block, a graph convolution) and a block that turns a
feature map into flat features (it has no inverse here), each with a one-line message.

Example:
    >>> import torch
    >>> from locallearn import build_cnn, build_mlp
    >>> net = build_mlp((4,), (8, 6), 3)
    >>> DifferenceTargetPropagation().setup(net)
    >>> net.stages[1].aux["dtp"](torch.zeros(2, 6)).shape  # g_2: 6 features back to 8
    torch.Size([2, 8])
    >>> net = build_cnn((1, 8, 8), (4, 6), 3)
    >>> DifferenceTargetPropagation().setup(net)
    >>> net.stages[1].aux["dtp"](torch.zeros(2, 6, 2, 2), size=(4, 4)).shape  # 6 maps 2x2 back to 4 maps 4x4
    torch.Size([2, 4, 4, 4])
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.net import LocalNet, Stage, layout, width as width_of
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.tokens import is_token_block

_LAYERS = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)  # the layers with parameters dtp trains


class Inverse(nn.Module):
    """``g_i``: one layer from a stage's output back to its input, then the activation of the layer
    below; for feature maps the output is first upsampled to ``size``, the input's spatial size."""

    def __init__(self, layer: nn.Module, activation: Sequence[nn.Module]) -> None:
        super().__init__()
        self.layer = layer
        self.activation = nn.Sequential(*activation)

    def forward(self, h: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        if size is not None and h.dim() == 4 and tuple(h.shape[-2:]) != tuple(size):
            h = F.interpolate(h, size=tuple(size), mode="nearest")
        return self.activation(self.layer(h))


def propagate_target(h_below: torch.Tensor, h: torch.Tensor, h_hat: torch.Tensor, inverse: nn.Module) -> torch.Tensor:
    """The difference-corrected target of the layer below: ``h_{i-1} + g_i(h_hat_i) - g_i(h_i)``.

    Example:
        >>> g = nn.Linear(3, 2)
        >>> h_below, h = torch.randn(4, 2), torch.randn(4, 3)
        >>> torch.allclose(propagate_target(h_below, h, h, g), h_below, atol=1e-6)  # no error above, no change below (up to rounding)
        True
    """
    if isinstance(inverse, Inverse):
        return h_below + inverse(h_hat, h_below.shape[2:]) - inverse(h, h_below.shape[2:])
    return h_below + inverse(h_hat) - inverse(h)


_ABOVE = "_dtp_stages_above"


def _stages_above(stage: Stage) -> tuple[Stage, ...]:
    if _ABOVE not in stage.__dict__:
        raise RuntimeError("dtp: run setup(net) first (the trainer does), so every stage has its inverse.")
    return stage.__dict__[_ABOVE]


def _squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).sum(1).mean()


@contextlib.contextmanager
def _statistics_kept(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Run ``modules`` in train mode (batch statistics) without moving their BatchNorm running statistics."""
    norms = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _check_block(stage: Stage, index: int) -> nn.Module:
    """The block's first Linear or Conv2d; a block holding any other layer with parameters is refused in one line."""
    for module in stage.block.modules():
        own = list(module.parameters(recurse=False))
        if is_token_block(module) or (own and not isinstance(module, _LAYERS)):
            raise ValueError(
                f"dtp trains blocks of Linear, Conv2d and BatchNorm layers, pooling and activations; stage "
                f"{index}'s block holds a {type(module).__name__}."
            )
    first = next((m for m in stage.block.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    if first is None:
        raise ValueError(f"dtp needs a Linear or Conv2d layer in every block; stage {index}'s block has none.")
    return first


def _activation(stage: Stage) -> list[nn.Module]:
    """A copy of the last activation (a ``torch.nn`` activation module) of ``stage``'s block after its last
    layer with parameters (what its output passed through), if any."""
    for module in reversed(list(stage.block.modules())):
        if list(module.parameters(recurse=False)):
            return []
        if type(module).__module__ == nn.ReLU.__module__:
            return [copy.deepcopy(module)]
    return []


def _inverse_layer(first: nn.Module, below: tuple[str, int], above: tuple[str, int], index: int) -> nn.Module:
    """The layer of ``g_index`` from the block's output (``above``: kind, width) to its input (``below``)."""
    if below[0] != above[0]:
        raise ValueError(
            f"dtp inverts blocks from features to features or maps to maps; stage {index}'s block turns "
            f"{below[0]} features into {above[0]} ones."
        )
    if below[0] == "flat":
        return nn.Linear(above[1], below[1])
    kernel, padding = first.kernel_size, first.padding
    if not isinstance(first, nn.Conv2d) or isinstance(padding, str):
        raise ValueError(f"dtp mirrors the first Conv2d of a map block with numeric padding; stage {index}'s has {padding!r}.")
    return nn.ConvTranspose2d(above[1], below[1], kernel, padding=padding)


@RULES.register("dtp")
class DifferenceTargetPropagation(LocalRule):
    """Difference target propagation with learned inverses (Lee et al. 2015), MLP and conv blocks.

    Args:
        eta: step of the top target along the output loss's negative gradient (authors: 0.327736).
        sigma: standard deviation of the noise the inverses are trained on (authors: 0.359830).
        reduction: ``"mean"`` (authors): the loss whose gradient steps the top target is the batch
            mean; ``"sum"``: its sum, so ``eta`` is each sample's step (a departure, batch-size free).

    Example:
        >>> DifferenceTargetPropagation(eta=0.2).get_params()
        {'eta': 0.2, 'sigma': 0.3598, 'reduction': 'mean'}

    Source: Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015 (difference target propagation; donghyunlee/dtp); conv
    inverses as in Ernoult et al., ICML 2022 (ernoult/scalingDTP).
    """

    source = "Lee, Zhang, Fischer & Bengio, ECML-PKDD 2015 (difference target propagation; donghyunlee/dtp); conv inverses as in Ernoult et al., ICML 2022 (ernoult/scalingDTP)"

    detach_inputs = True
    token_blocks = False  # refuses a transformer's (token) blocks in setup
    changes_net = True  # attaches an inverse per stage

    def __init__(self, *, eta: float = 0.3277, sigma: float = 0.3598, reduction: str = "mean") -> None:
        owner = "DifferenceTargetPropagation"
        self.eta = check_number(eta, name="eta", owner=owner, low=0.0, low_inclusive=False)
        self.sigma = check_number(sigma, name="sigma", owner=owner, low=0.0)
        self.reduction = check_choice(reduction, name="reduction", owner=owner, choices=("mean", "sum"))

    def setup(self, net: LocalNet) -> None:
        firsts = [_check_block(stage, k) for k, stage in enumerate(net.stages)]
        shapes = net.stage_shapes()
        for k, stage in enumerate(net.stages):
            # a plain (unregistered) reference to the stages above, which a deepcopy of the net remaps
            stage.__dict__[_ABOVE] = tuple(net.stages[k + 1:])
            if k == 0:
                continue
            below = (layout(shapes[k].input), width_of(shapes[k].input))
            layer = _inverse_layer(firsts[k], below, (shapes[k].kind, shapes[k].width), k)
            inverse = Inverse(layer, _activation(net.stages[k - 1]))
            stage.aux["dtp"] = inverse.to(firsts[k].weight.device)

    def target(self, stage: Stage, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The target ``h_hat`` of ``stage`` (not the last) whose output is ``h``: forward the later
        blocks, step the top output along the loss's negative gradient, and propagate it down."""
        above = _stages_above(stage)
        with torch.no_grad(), _statistics_kept([later.block for later in above]):
            outputs = [h.detach()]
            for later in above:
                outputs.append(later.block(outputs[-1]))
        top = outputs[-1].clone().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(above[-1].head(top), y, reduction=self.reduction)
            (grad,) = torch.autograd.grad(loss, top)
        with torch.no_grad():
            h_hat = outputs[-1] - self.eta * grad
            for j in range(len(above), 0, -1):
                h_hat = propagate_target(outputs[j - 1], outputs[j], h_hat, above[j - 1].aux["dtp"])
        return h_hat

    def inverse_loss(self, stage: Stage, h_in: torch.Tensor) -> torch.Tensor:
        """``||g(f(h + eps)) - (h + eps)||^2`` with ``f`` fixed: trains the inverse only."""
        noisy = h_in.detach() + self.sigma * torch.randn_like(h_in)
        with torch.no_grad(), _statistics_kept([stage.block]):
            forward = stage.block(noisy)
        return _squared_error(stage.aux["dtp"](forward, noisy.shape[2:]), noisy)

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
