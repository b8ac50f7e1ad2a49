"""``forward-forward``: the Forward-Forward algorithm (Hinton 2022), supervised version.

Each layer learns, from its own activities alone, to have high *goodness*
``G = sum of squared activities`` on positive data and low goodness on negative
data: its loss is the logistic ``-log sigmoid(G_pos - theta) - log(1 - sigmoid(G_neg - theta))``.
Positive data is the input with its correct label written into the first
``num_classes`` values (one-hot); negative data is the same input with a wrong
label. The activity vector is length-normalised before it enters the next
layer, so a layer cannot pass on its goodness, only the direction of its
activities. A class is predicted by running the net once per candidate label
and picking the label with the highest goodness.

How it maps onto locallearn: ``transform_batch`` builds the batch of positive
and negative rows (labels of negative rows encoded as ``-1 - wrong label``);
``setup`` puts a length normalisation in front of every block,
replaces every head by a parameter-free :class:`GoodnessHead` and turns the
net into a :class:`ForwardForwardNet`, whose forward pass runs every candidate
label and returns one exit per layer: exit 1 scores a label by the first
layer's goodness, exit ``k >= 2`` by the goodness summed over layers 2..k. The
last exit is the paper's prediction ("accumulated goodness over all but the
first hidden layer").

Kept from the paper: goodness as the sum of squares, the logistic loss on
positive and negative data, label one-hot in the first pixels, normalisation of
the activity vector's length between layers, inference by goodness per label,
every layer trained from its own loss only. Not kept / changed:

* negative labels are drawn uniformly among the wrong ones (the paper also uses
  "hard" negatives picked from the net's own predictions);
* the threshold ``theta`` defaults to the layer's number of units, as in Hinton's code
  (an average squared activity of 1); ``threshold="quarter-units"`` is this package's
  earlier default (a quarter of the units), kept as a named option, or give a number;
* the input of the first layer (the image with its label written in) is length-normalised
  like every other layer's input, as in Hinton's code; ``normalise_input=False`` leaves it
  as it is (the earlier behaviour); the length normalisation divides by the root mean
  square, so a normalised vector has an average square of 1;
* every Linear and Conv2d layer of the blocks starts as in Hinton's code: weights drawn from N(0, 1/fan_in),
  biases zero (``hinton_init=False`` keeps the net's own initialisation, the earlier behaviour). With
  PyTorch's default (uniform, variance 1/(3 fan_in)) a layer's goodness starts near a sixth of the threshold,
  where the negative term's gradient vanishes: digits, MLP 3x256, 10 epochs, exits 89 / 74 / 65 % against
  92 / 90 / 91 % with this initialisation (``python benchmarks/ff_init_digits.py``, results/ff-init);
* the paper's alternative read-out (a softmax layer on the activities with a
  neutral label) is not provided; a user head passed to the net is replaced.

The rule declares ``transforms_batch``: schedules whose later stages train on cached inputs
(``sequential``, ``freezeout``) or on another process's features (``pipeline``) carry no
positive/negative rows there, and refuse it before training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.net import LocalNet
from locallearn.rules.base import RULES, LocalRule, StageOutput


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Sum of squared activities of each row (all dimensions after the first).

    Example:
        >>> goodness(torch.tensor([[1.0, 2.0], [0.0, 3.0]]))
        tensor([5., 9.])
    """
    return h.flatten(1).pow(2).sum(1)


def embed_label(x: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``x`` with its first ``num_classes`` values (in row-major order) set to the one-hot ``labels``.

    Example:
        >>> embed_label(torch.full((1, 1, 2, 3), 7.0), torch.tensor([1]), 2)
        tensor([[[[0., 1., 7.],
                  [7., 7., 7.]]]])
    """
    flat = x.flatten(1).clone()
    if flat.shape[1] < num_classes:
        raise ValueError(f"Forward-Forward writes the label into the first {num_classes} input values; "
                         f"the input has only {flat.shape[1]}.")
    flat[:, :num_classes] = F.one_hot(labels, num_classes).to(flat.dtype)
    return flat.view_as(x)


class LengthNorm(nn.Module):
    """Divide each row by its root mean square (Hinton's normalisation between layers).

    Example:
        >>> LengthNorm()(torch.tensor([[3.0, 4.0]])).pow(2).mean().item()
        1.0
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rms = h.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (h.dim() - 1)))
        return h / (rms + self.eps)


def hinton_initialise(block: nn.Module) -> None:
    """Hinton's FF initialisation (ffcode ``ffnew.m``): every Linear and Conv2d weight drawn from N(0, 1/fan_in),
    every bias zero.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> layer = nn.Linear(400, 100)
        >>> hinton_initialise(layer)
        >>> round(layer.weight.var().item() * 400, 1), layer.bias.abs().sum().item()
        (1.0, 0.0)
    """
    for m in block.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.normal_(0.0, fan_in ** -0.5)
                if m.bias is not None:
                    m.bias.zero_()


class GoodnessHead(nn.Module):
    """A parameter-free head: the goodness of each row, shape ``(N, 1)``."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return goodness(h)[:, None]


class ForwardForwardNet(LocalNet):
    """A LocalNet whose forward pass scores every candidate label by goodness (one exit per layer).

    ``num_classes`` labels are tried, each written into the input's first values;
    exit 1 is layer 1's goodness per label, exit ``k >= 2`` the goodness summed over
    layers 2..k. Made by ``ForwardForward.setup`` from any LocalNet.
    """

    num_classes: int

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        if return_features:
            raise ValueError("A Forward-Forward net has no single feature pass: every label gets its own.")
        n, c = len(x), self.num_classes
        labels = torch.arange(c, device=x.device).repeat_interleave(n)
        h = embed_label(x.repeat(c, *([1] * (x.dim() - 1))), labels, c)
        per_layer = []
        for stage in self.stages:
            h = stage.block(h)
            per_layer.append(goodness(h).view(c, n).t())
        exits, running = [per_layer[0]], torch.zeros_like(per_layer[0])
        for g in per_layer[1:]:
            running = running + g
            exits.append(running)
        return exits


THRESHOLDS = {"units": 1.0, "quarter-units": 0.25}  # threshold per unit of the layer


@RULES.register("forward-forward")
class ForwardForward(LocalRule):
    """Forward-Forward (Hinton 2022): each layer separates positive from negative data by goodness.

    Args:
        threshold: ``theta`` of the logistic: ``"units"`` (default, Hinton's code) the layer's number
            of units, ``"quarter-units"`` a quarter of them (the earlier default), or a number >= 0.
        normalise_input: length-normalise the first layer's input too (default, Hinton's code).
        hinton_init: re-initialise the blocks' Linear and Conv2d layers as Hinton's code does (default):
            weights N(0, 1/fan_in), biases zero.

    Source: Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations", 2022
    (arXiv:2212.13345), and his Matlab code released with it.

    Wrong labels are drawn from torch's global generator, which the trainer seeds and restores.

    Example:
        >>> import torch
        >>> from locallearn import build_mlp
        >>> net = build_mlp((16,), (8, 8), 4)
        >>> rule = ForwardForward()
        >>> rule.setup(net)
        >>> type(net).__name__, type(net.stages[0].block[0]).__name__, [t.shape for t in net(torch.randn(3, 16))]
        ('ForwardForwardNet', 'LengthNorm', [torch.Size([3, 4]), torch.Size([3, 4])])
    """

    detach_inputs = True
    changes_net = True  # goodness heads, length-normalised inputs, a ForwardForwardNet
    transforms_batch = True  # positive and negative rows

    source = "Hinton, arXiv:2212.13345, 2022 (his Matlab code)"

    def __init__(self, *, threshold: float | str = "units", normalise_input: bool = True, hinton_init: bool = True) -> None:
        if not isinstance(threshold, str):
            threshold = check_number(threshold, name="threshold", owner="ForwardForward", low=0.0)
        elif threshold not in THRESHOLDS:
            raise ValueError(
                f"The 'threshold' parameter of ForwardForward must be a float >= 0 or one of "
                f"{', '.join(map(repr, THRESHOLDS))}. Got {threshold!r} instead."
            )
        self.threshold = threshold
        self.normalise_input = bool(normalise_input)
        self.hinton_init = bool(hinton_init)
        self.num_classes: int | None = None

    def theta(self, units: int) -> float:
        """The threshold for a layer of ``units`` units."""
        if isinstance(self.threshold, str):
            return units * THRESHOLDS[self.threshold]
        return self.threshold

    def setup(self, net: LocalNet) -> None:
        if type(net) is not LocalNet:
            raise TypeError(f"forward-forward turns a plain LocalNet into a ForwardForwardNet; got a {type(net).__name__}.")
        num_classes = net.stage_shapes()[0].exit[-1]  # read before the heads become goodness heads
        for k, stage in enumerate(net.stages):
            if self.hinton_init:
                hinton_initialise(stage.block)
            if k > 0 or self.normalise_input:
                stage.block = nn.Sequential(LengthNorm(), stage.block)
            stage.head = GoodnessHead()
        net.__class__ = ForwardForwardNet
        net.num_classes = num_classes
        self.bind(net)

    def bind(self, net: LocalNet) -> None:
        self.num_classes = net.num_classes

    def transform_batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positive rows (true label embedded) then negative rows (a wrong label); negatives' labels
        become ``-1 - wrong label``."""
        if self.num_classes is None:
            raise RuntimeError("forward-forward: run setup(net) first (the trainer does); it learns the number of classes.")
        c = self.num_classes
        shift = torch.randint(1, c, y.shape, device=y.device)
        wrong = (y + shift) % c
        both = torch.cat([embed_label(x, y, c), embed_label(x, wrong, c)])
        return both, torch.cat([y, -1 - wrong])

    def stage_loss(self, out: StageOutput, y: torch.Tensor) -> torch.Tensor:
        negative = y < 0
        # checked on the device (no host read; on a GPU it fires at the next synchronisation)
        torch._assert_async(
            negative.any() & ~negative.all(),
            f"forward-forward: stage {out.index} got no mix of positive and negative rows; its inputs must come "
            "from the batch transform_batch makes (cached inputs of a later stage carry none; schedules that feed "
            "those, Schedule.carries_batch_transform, refuse this rule).",
        )
        g = goodness(out.h_out)
        theta = self.theta(out.h_out[0].numel())
        neg = negative.to(g.dtype)  # weights, not boolean indexing: a mask's row count is another device sync
        pos = 1.0 - neg
        return (F.softplus(-(g - theta)) * pos).sum() / pos.sum() + (F.softplus(g - theta) * neg).sum() / neg.sum()
