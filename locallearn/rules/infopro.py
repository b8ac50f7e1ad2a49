"""``infopro``: information propagation local loss (Wang, Ni, Song, Yang & Huang, ICLR 2021).

Greedy local cross-entropy makes early stages throw away information about the
input that later stages would need. InfoPro keeps it: each local stage ``k``
minimises ``lambda1_k * R_k + lambda2_k * S_k``, where ``R_k`` is a
reconstruction loss (a small decoder from the stage's features back to the
network input: a lower bound on the information the features keep about it) and
``S_k`` a supervised term (cross-entropy through the stage's head, or a
supervised contrastive loss).

Kept from the paper and the authors' code (blackfeather-wang/InfoPro-Pytorch):

* the decoder for feature maps: bilinear upsampling (corners aligned) to the input's
  size, ``Conv3x3 -> BatchNorm -> ReLU -> Conv3x3`` back to the input's channels,
  sigmoid, binary cross-entropy against the image in [0, 1];
* the weights: ``lambda`` interpolated linearly from ``(lambda1, lambda2)`` at the first
  stage to ``(lambda1_end, lambda2_end)`` at the last local stage (ratio ``k / (L - 2)``);
  defaults ``lambda1 = 5, lambda2 = 1``, the authors' CIFAR-10 ResNet-32, K = 2 setting;
* the last stage learns from its own head's cross-entropy alone (the network's classifier);
* ``supervision="contrast"``: SupCon (Khosla et al. 2020) on a projection to 128 dimensions,
  temperature 0.07, as the authors' ``contrast`` mode, with their ``SupConLoss`` (every anchor
  in the mean, the ``T / 0.07`` factor); ``"ce"`` (default) is their
  ``cross_entropy`` mode ("InfoPro (Softmax)" in the paper), which also trains the exit.

Not kept / changed:

* the network input is mapped to [0, 1] by the batch's own min and max (locallearn's
  datasets are standardised; for Fashion-MNIST this recovers the raw pixels);
* flat features (an MLP) get a one-layer linear decoder (the paper has conv nets only);
* token features of an image (a vision transformer) are viewed as the map of their patch
  tokens, ``(D, g, g)`` (``locallearn.tokens.tokens_to_map``; the class token is left out),
  and decoded as a feature map; the contrastive projection pools them to their mean token;
* under ``"contrast"`` the stage's head is trained as a probe on detached features (by
  cross-entropy) so that every exit predicts; the contrastive projection is ``0c2f``
  (pool, Linear, ReLU, Linear) rather than the authors' ``1c2f`` (with one conv first).

``setup`` attaches ``stage.aux["infopro"]`` (decoder, and projection under
``"contrast"``) to every stage but the last. The rule reads the network input
(``StageOutput.x``), so schedules that cannot carry it (the pipeline's later
workers) refuse it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.net import LocalNet, StageShape, layout
from locallearn.rules.base import RULES, LocalRule, StageOutput
from locallearn.tokens import pool_tokens, tokens_to_map


SUPCON_FORMS = ("authors", "positives-only")


def supervised_contrastive_loss(
    z: torch.Tensor, y: torch.Tensor, temperature: float = 0.07, *, base_temperature: float = 0.07, form: str = "authors"
) -> torch.Tensor:
    """SupCon (Khosla et al. 2020) with one view per sample, on L2-normalised rows of ``z``.

    For anchor ``i`` with positives ``P(i)`` (the other samples of its class):
    ``l_i = -(T / T_base) / |P(i)| sum_p log(exp(z_i.z_p/T) / sum_{a != i} exp(z_i.z_a/T))``.
    ``form="authors"`` (default) is the ``SupConLoss`` the InfoPro authors ship
    (blackfeather-wang/InfoPro-Pytorch ``networks/losses.py``, after Khosla et al.'s code):
    the mean of ``l_i`` over *every* anchor, one without a positive adding 0, and the factor
    ``T / T_base`` (``T_base = 0.07``; 1 at InfoPro's ``T = 0.07``). ``form="positives-only"``
    is this package's earlier version: no factor, the mean over the anchors that have a
    positive (0 when none has).

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> round(float(supervised_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), temperature=0.07)), 4)
        0.0
        >>> round(float(supervised_contrastive_loss(z, torch.tensor([0, 0, 1, 1]), temperature=1.0, form="positives-only")), 4)
        0.5514
    """
    z = F.normalize(z.flatten(1), dim=1)
    logits = z @ z.t() / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    count = positives.sum(1)
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1) / count.clamp(min=1)
    if form == "authors":
        return -(temperature / base_temperature) * mean_log_prob.mean()
    has = count > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    return -mean_log_prob[has].mean()


def _input_layout(first: StageShape, stage: StageShape) -> tuple[str, int]:
    """How ``stage``'s decoder rebuilds the network input (``first.input``): ``("map", channels)`` of an
    image from spatial features (a map, or tokens) when the first block keeps the input spatial too,
    otherwise ``("flat", size)``, every value of it from a vector."""
    if layout(first.input) == "map" and first.kind != "flat" and stage.kind != "flat":
        return "map", first.input[0]
    return "flat", math.prod(first.input)


class Decoder(nn.Module):
    """Features of one stage back to the network input; ``forward(h, like)`` returns logits of ``like``'s shape.

    Example:
        >>> dec = Decoder("map", 16, "map", 1, width_hidden=12)
        >>> dec(torch.zeros(2, 16, 7, 7), torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(self, kind: str, width: int, input_kind: str, input_size: int, *, width_hidden: int = 12) -> None:
        super().__init__()
        self.kind = kind
        if kind in ("map", "tokens") and input_kind == "map":
            self.net = nn.Sequential(
                nn.Conv2d(width, width_hidden, 3, padding=1), nn.BatchNorm2d(width_hidden), nn.ReLU(),
                nn.Conv2d(width_hidden, input_size, 3, padding=1),
            )
        else:
            self.net = nn.Linear(width, input_size)

    def forward(self, h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.kind == "tokens" and h.dim() == 3 and like.dim() == 4:
            h = tokens_to_map(h)
        if self.kind in ("map", "tokens") and h.dim() == 4 and like.dim() == 4:
            return self.net(F.interpolate(h, size=like.shape[-2:], mode="bilinear", align_corners=True))
        return self.net(h.flatten(1)).view_as(like)


class MeanToken(nn.Module):
    """``(B, T, D) -> (B, D)``: the mean token (the contrastive projection's pooling of tokens)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return pool_tokens(h, "mean")


class InfoProAux(nn.Module):
    """One stage's InfoPro modules (decoder, optional projection) and its two loss weights."""

    def __init__(self, decoder: Decoder, projection: nn.Module | None, lambda_recon: float, lambda_sup: float) -> None:
        super().__init__()
        self.decoder = decoder
        self.projection = projection
        self.lambda_recon, self.lambda_sup = lambda_recon, lambda_sup


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against ``x`` mapped to [0, 1] by its min and max.

    Example:
        >>> x = torch.tensor([[0.0, 2.0]])
        >>> round(float(reconstruction_loss(torch.tensor([[-30.0, 30.0]]), x)), 6)
        0.0
    """
    low, span = x.min(), x.max() - x.min()
    # chosen on the device (no host read of the span): 0 for a constant x
    target = torch.where(span > 0, (x - low) / torch.where(span > 0, span, 1.0), 0.0)
    return F.binary_cross_entropy_with_logits(logits, target)


@RULES.register("infopro")
class InfoPro(LocalRule):
    """InfoPro local loss: ``lambda1 * reconstruction + lambda2 * supervised`` per local stage.

    Args:
        lambda1, lambda2: weights of the reconstruction and supervised terms at the first stage.
        lambda1_end, lambda2_end: the same at the last local stage (the one before the last
            stage), linearly interpolated in between; ``None``: equal to the first stage's.
        supervision: ``"ce"`` (cross-entropy through the stage's head) or ``"contrast"``.
        temperature: SupCon temperature (``"contrast"`` only).
        decoder_width: channels of the decoder's hidden conv layer (the authors' 12).
        supcon: ``"authors"`` (default) the authors' ``SupConLoss``; ``"positives-only"`` the
            earlier form (see :func:`supervised_contrastive_loss`).

    Defaults that differ from the paper: ``supervision="ce"``, the authors' ``cross_entropy``
    mode, where the paper's main results use the contrastive one (``supervision="contrast"``).

    Source: Wang, Ni, Song, Yang & Huang, ICLR 2021 (blackfeather-wang/InfoPro-Pytorch).

    Example:
        >>> import torch
        >>> from locallearn import build_cnn
        >>> net = build_cnn((1, 8, 8), (4, 8, 8), 3)
        >>> rule = InfoPro(lambda2_end=3.0)
        >>> rule.setup(net)
        >>> [(a.lambda_recon, a.lambda_sup) for a in (s.aux["infopro"] for s in net.stages[:2])]
        [(5.0, 1.0), (5.0, 3.0)]
        >>> "infopro" in net.stages[2].aux  # the last stage learns from its head alone
        False
    """

    source = 'Wang, Ni, Song, Yang & Huang, ICLR 2021 (blackfeather-wang/InfoPro-Pytorch)'

    detach_inputs = True
    changes_net = True  # attaches a decoder (and projection) per stage
    needs_input = True

    def __init__(
        self, *, lambda1: float = 5.0, lambda2: float = 1.0, lambda1_end: float | None = None,
        lambda2_end: float | None = None, supervision: str = "ce", temperature: float = 0.07,
        decoder_width: int = 12, supcon: str = "authors",
    ) -> None:
        owner = "InfoPro"
        self.lambda1 = check_number(lambda1, name="lambda1", owner=owner, low=0.0)
        self.lambda2 = check_number(lambda2, name="lambda2", owner=owner, low=0.0)
        self.lambda1_end = None if lambda1_end is None else check_number(lambda1_end, name="lambda1_end", owner=owner, low=0.0)
        self.lambda2_end = None if lambda2_end is None else check_number(lambda2_end, name="lambda2_end", owner=owner, low=0.0)
        self.supervision = check_choice(supervision, name="supervision", owner=owner, choices=("ce", "contrast"))
        self.temperature = check_number(temperature, name="temperature", owner=owner, low=0.0, low_inclusive=False)
        self.decoder_width = check_number(decoder_width, name="decoder_width", owner=owner, low=1, integer=True)
        self.supcon = check_choice(supcon, name="supcon", owner=owner, choices=SUPCON_FORMS)

    def stage_weights(self, index: int, num_stages: int) -> tuple[float, float]:
        """``(lambda1_k, lambda2_k)`` of local stage ``index`` (ratio ``k / (L - 2)``, 0 when L <= 2)."""
        ratio = index / (num_stages - 2) if num_stages > 2 else 0.0
        end1 = self.lambda1 if self.lambda1_end is None else self.lambda1_end
        end2 = self.lambda2 if self.lambda2_end is None else self.lambda2_end
        return self.lambda1 * (1 - ratio) + end1 * ratio, self.lambda2 * (1 - ratio) + end2 * ratio

    def setup(self, net: LocalNet) -> None:
        shapes = net.stage_shapes()
        for k, stage in enumerate(net.stages[:-1]):
            weights = self.stage_weights(k, len(net.stages))
            kind, width = shapes[k].kind, shapes[k].width
            projection = None
            if self.supervision == "contrast":
                pool = {"map": [nn.AdaptiveAvgPool2d(1), nn.Flatten()], "tokens": [MeanToken()]}.get(kind, [nn.Flatten()])
                projection = nn.Sequential(*pool, nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, 128))
            decoder = Decoder(kind, width, *_input_layout(shapes[0], shapes[k]), width_hidden=self.decoder_width)
            device = next(stage.parameters()).device
            stage.aux["infopro"] = InfoProAux(decoder, projection, *weights).to(device)

    def bind(self, net: LocalNet) -> None:
        """Another InfoPro prepared ``net``: its decoders stay, the loss weights become this rule's."""
        for k, stage in enumerate(net.stages[:-1]):
            stage.aux["infopro"].lambda_recon, stage.aux["infopro"].lambda_sup = self.stage_weights(k, len(net.stages))

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        if out.is_last:
            return F.cross_entropy(out.logits, y)
        aux = out.stage.aux["infopro"] if "infopro" in out.stage.aux else None
        if aux is None:
            raise RuntimeError("infopro: run setup(net) first (the trainer does), so each stage has its decoder.")
        if out.x is None:
            raise RuntimeError(
                "infopro reconstructs the network input, but this step gave no StageOutput.x; pass x= to run_stages "
                "(schedules that do not carry the input, Schedule.carries_input, refuse this rule)."
            )
        recon = reconstruction_loss(aux.decoder(out.h_out, out.x), out.x)
        if aux.projection is not None:
            supervised, probe = supervised_contrastive_loss(aux.projection(out.h_out), y, self.temperature, form=self.supcon), True
        else:
            supervised, probe = F.cross_entropy(out.logits, y), aux.lambda_sup == 0
        loss = aux.lambda_recon * recon + aux.lambda_sup * supervised
        if probe:  # the exit learns on detached features when the block's loss does not train it
            loss = loss + F.cross_entropy(out.stage.head(out.h_out.detach()), y)
        return loss
