"""``wrap``: turn an existing model into a LocalNet without touching its parameters.

The model's children, in registration order, are taken as its layers (true of an
``nn.Sequential`` and of models like torchvision's ResNet, whose ``forward``
runs ``conv1 ... layer1 ... layer4, avgpool, fc`` in that order). ``split``
names where new stages begin, by child index or child name, as in slicing:
``split=[2, 4]`` gives ``model[:2], model[2:4], model[4:]``. A ``Flatten`` is
inserted before a ``Linear`` child that would receive a feature map (ResNet's
``torch.flatten`` before ``fc``). The last stage keeps the model's own
classifier as its exit when its output already has ``num_classes`` features.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> net = wrap(model, split=[3, 5], num_classes=10, input_shape=(1, 8, 8))
    >>> [t.shape for t in net(torch.zeros(2, 1, 8, 8))]
    [torch.Size([2, 10]), torch.Size([2, 10]), torch.Size([2, 10])]
    >>> net.stages[0].block[1].weight is model[1].weight
    True
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from locallearn._params import check_number
from locallearn.heads import HeadSpec, make_head
from locallearn.net import LocalNet, Stage, output_shapes


def _boundaries(names: list[str], split: Sequence[int | str]) -> list[int]:
    cuts = []
    for point in split:
        if isinstance(point, str):
            if point not in names:
                raise ValueError(
                    f"The split point {point!r} names no layer of the model. Its children are: {', '.join(names)}."
                )
            cuts.append(names.index(point))
        elif isinstance(point, int) and not isinstance(point, bool) and 0 < point < len(names):
            cuts.append(point)
        else:
            raise ValueError(
                f"The split point {point!r} is not a child index in 1..{len(names) - 1} nor a child name; "
                f"the model's children are: {', '.join(names)}."
            )
    if cuts != sorted(set(cuts)):
        raise ValueError(f"Split points must be distinct and in forward order; got {list(split)}.")
    return [0, *cuts, len(names)]


def _with_flatten(layers: list[nn.Module], input_shape: Sequence[int]) -> list[nn.Module]:
    """Insert ``nn.Flatten`` before a Linear that would otherwise receive a feature map."""
    out: list[nn.Module] = []
    shape = tuple(input_shape)
    for layer in layers:
        if isinstance(layer, nn.Linear) and len(shape) > 1 and shape[-1] != layer.in_features:
            out.append(nn.Flatten())
            shape = output_shapes([out[-1]], shape)[-1]
        out.append(layer)
        shape = output_shapes([layer], shape)[-1]
    return out


def wrap(
    model: nn.Module,
    *,
    split: Sequence[int | str],
    num_classes: int,
    input_shape: Sequence[int],
    head: HeadSpec = "linear",
    head_kw: dict[str, Any] | None = None,
) -> LocalNet:
    """Cut ``model`` into stages at ``split`` and give every stage a head (see module docstring)."""
    check_number(num_classes, name="num_classes", owner="wrap", low=2, integer=True)
    named = list(model.named_children())
    if not named:
        raise ValueError(f"Cannot wrap {type(model).__name__}: it has no child modules to split.")
    bounds = _boundaries([name for name, _ in named], split)
    blocks, shape = [], tuple(input_shape)
    for a, b in zip(bounds[:-1], bounds[1:]):
        blocks.append(nn.Sequential(*_with_flatten([module for _, module in named[a:b]], shape)))
        shape = output_shapes([blocks[-1]], shape)[-1]
    shapes = output_shapes(blocks, input_shape)
    stages = []
    for i, (block, shape) in enumerate(zip(blocks, shapes)):
        is_classifier = i == len(blocks) - 1 and shape == (num_classes,)
        stages.append(Stage(block, nn.Identity() if is_classifier else make_head(head, shape, num_classes, **(head_kw or {}))))
    return LocalNet(stages)
