"""``auglocal``: augmented local learning (Ma, Wu, Sun, Zhang, Huang & Tan, ICLR 2024).

A local stage's auxiliary net is built from the network itself: stage ``i`` learns from the
cross-entropy of a copy of a *uniform subsample of the layers above it*, followed by a
classifier, so the local loss sees roughly the function the rest of the network will apply.

Kept from the paper and the authors' code (``ChenxiangMA/AugLocal``, ``networks/auxiliary_nets.py``,
``unifSamp`` configuration, and ``networks/resnet.py``):

* the layers sampled for stage ``i`` of ``L`` (``aux_layer_indices``): every layer above it when
  the depth ``d_i >= L - 1 - i``, else ``round(i + (L - i - 1) / d_i * m)`` for ``m = 1 .. d_i``;
* the pyramidal depth (``aux_depths``): ``d_i = max(1, round(d (1 - i c / (L - 2)) + i c / (L - 2)))``
  for the local stages ``i = 0 .. L - 2``, decaying linearly from ``d`` towards 1; defaults
  ``depth = 3``, ``pyramid = True``, ``pyramid_coeff = 0.5`` (the authors' ``run.sh``);
* the classifier after the sampled layers: global average pooling, ``BatchNorm1d`` only when the
  depth is 1, then a linear layer to the classes;
* the sampled layers are new modules (fresh parameters, re-initialised), never shared with the
  backbone; the last stage learns from its own head's cross-entropy.

Not kept / changed:

* a "layer" here is one stage's block of the ``LocalNet`` (the authors' unit is a residual block,
  one per local module); a sampled copy whose input width differs from the features fed to it
  (because layers in between were skipped) gets a 1x1 ``Conv2d`` (``Linear`` for flat features)
  adapter in front (the authors build new blocks of the skipped width directly); spatial size is
  left to the copies' own pooling (the authors add stride-2 where needed), the global pool at the
  end absorbs the difference;
* the stage's own head (its exit) is trained as a probe on detached features, so every exit predicts;
* token features (a vision transformer's) are pooled to their mean token before the classifier
  (the paper has conv nets only).

Example:
    >>> from locallearn import build_mlp
    >>> aux_depths(8, depth=3, pyramid=True, pyramid_coeff=0.5)
    [3, 3, 3, 2, 2, 2, 2]
    >>> aux_layer_indices(0, 8, 3)
    [2, 5, 7]
    >>> net = build_mlp((4,), (8, 8, 8), 3)
    >>> AugLocal().setup(net)
    >>> len(net.stages[0].aux["auglocal"].layers), "auglocal" in net.stages[2].aux
    (2, False)
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.net import LocalNet, width as width_of
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.rules.infopro import MeanToken


def aux_depths(num_stages: int, *, depth: int, pyramid: bool, pyramid_coeff: float) -> list[int]:
    """Depth ``d_i`` of each local stage's auxiliary net (the paper's pyramidal decay, or ``depth`` throughout)."""
    span = num_stages - 2
    if not pyramid or span <= 0:
        return [depth] * (num_stages - 1)
    return [max(1, round(depth * (1 - i * pyramid_coeff / span) + i * pyramid_coeff / span)) for i in range(num_stages - 1)]


def aux_layer_indices(index: int, num_stages: int, depth: int) -> list[int]:
    """The layers (stage indices) sampled uniformly above stage ``index`` for an auxiliary net of ``depth``."""
    if depth >= num_stages - 1 - index:
        return list(range(index + 1, num_stages))
    return [round(index + (num_stages - index - 1) / depth * m) for m in range(1, depth + 1)]


def _fresh_copy(block: nn.Module, kind: str, in_width: int, expected: int) -> nn.Module:
    """A re-initialised copy of ``block`` (whose input has width ``expected``), behind a 1x1 conv (or
    linear) adapter from ``in_width`` when that differs (so residual blocks keep their shortcut intact)."""
    block = copy.deepcopy(block)
    for module in block.modules():
        if module is not block and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    if expected == in_width:
        return block
    adapter = nn.Conv2d(in_width, expected, 1) if kind == "map" else nn.Linear(in_width, expected)
    return nn.Sequential(adapter, block)


class AugLocalAux(nn.Module):
    """One stage's auxiliary net: the sampled layer copies, then pool (+ BatchNorm1d at depth 1) and a linear classifier."""

    def __init__(self, layers: list[nn.Module], kind: str, width: int, num_classes: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        pool = {"map": [nn.AdaptiveAvgPool2d(1), nn.Flatten()], "tokens": [MeanToken()]}.get(kind, [nn.Flatten()])
        norm = [nn.BatchNorm1d(width)] if depth <= 1 else []
        self.classifier = nn.Sequential(*pool, *norm, nn.Linear(width, num_classes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(h))


@RULES.register("auglocal")
class AugLocal(LocalRule):
    """Cross-entropy of an auxiliary net made of re-initialised copies of the layers above each stage.

    Args:
        depth: ``d``, the auxiliary depth of the first stage (number of sampled layers).
        pyramid: decay the depth linearly over the stages (the paper's pyramidal structure).
        pyramid_coeff: ``c``, how far the decay goes (1: down to 1 at the last local stage).

    Example:
        >>> rule = AugLocal(depth=1, pyramid=False)
        >>> rule.get_params()
        {'depth': 1, 'pyramid': False, 'pyramid_coeff': 0.5}

    Source: Ma, Wu, Sun, Zhang, Huang & Tan, ICLR 2024 (AugLocal, ChenxiangMA/AugLocal).
    """

    source = "Ma, Wu, Sun, Zhang, Huang & Tan, ICLR 2024 (AugLocal, ChenxiangMA/AugLocal)"

    detach_inputs = True
    changes_net = True  # attaches an auxiliary net per stage

    def __init__(self, *, depth: int = 3, pyramid: bool = True, pyramid_coeff: float = 0.5) -> None:
        owner = "AugLocal"
        self.depth = check_number(depth, name="depth", owner=owner, low=1, integer=True)
        self.pyramid = check_choice(pyramid, name="pyramid", owner=owner, choices=(False, True))
        self.pyramid_coeff = check_number(pyramid_coeff, name="pyramid_coeff", owner=owner, low=0.0, high=1.0)

    def setup(self, net: LocalNet) -> None:
        shapes = net.stage_shapes()
        num_stages, num_classes = len(net.stages), shapes[-1].exit[-1]
        depths = aux_depths(num_stages, depth=self.depth, pyramid=self.pyramid, pyramid_coeff=self.pyramid_coeff)
        for i, stage in enumerate(net.stages[:-1]):
            kind, width = shapes[i].kind, shapes[i].width
            layers = []
            for j in aux_layer_indices(i, num_stages, depths[i]):
                layers.append(_fresh_copy(net.stages[j].block, kind, width, expected=width_of(shapes[j].input)))
                kind, width = shapes[j].kind, shapes[j].width
            device = next(stage.parameters()).device
            stage.aux["auglocal"] = AugLocalAux(layers, kind, width, num_classes, depths[i]).to(device)

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        if out.is_last:
            return F.cross_entropy(out.logits, y)
        if "auglocal" not in out.stage.aux:
            raise RuntimeError("auglocal: run setup(net) first (the trainer does), so each stage has its auxiliary net.")
        loss = F.cross_entropy(out.stage.aux["auglocal"](out.h_out), y)
        return loss + F.cross_entropy(out.stage.head(out.h_out.detach()), y)
