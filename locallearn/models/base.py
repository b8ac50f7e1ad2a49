"""The model-family contract: a named architecture that builds a ``LocalNet`` cut into stages.

A family's constructor only stores keyword-only hyper-parameters (validated with the
package's one message shape); ``build(input_shape, num_classes)`` makes the network.
``tiny(stages)`` gives a small instance with that many stages for the conformance check
(``locallearn.testing.check_model``), and ``example_batch`` a batch it accepts.

Example:
    >>> from locallearn import models
    >>> family = models.create("mlp", widths=(16, 16))
    >>> net = family.build((1, 8, 8), 10)
    >>> net.num_exits, family.describe()
    (2, 'mlp 16-16')
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from locallearn._params import get_params
from locallearn._registry import Registry
from locallearn.net import LocalNet


class ModelFamily:
    """Base class of every registered model. Subclasses set ``default_head`` and implement ``build``.

    ``tiny_input_shape`` is the input shape the conformance check builds ``tiny`` instances for.
    """

    name: str
    default_head: str = "linear"
    tiny_input_shape: tuple[int, ...] = (1, 8, 8)

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        """The network for inputs of ``input_shape`` (without the batch) and ``num_classes`` outputs."""
        raise NotImplementedError

    def num_stages(self) -> int:
        """How many stages (local modules, exits) ``build`` makes."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short label for tables and figures, e.g. ``mlp 256-256-256``."""
        return self.name

    def candidate_cuts(self) -> list[Any]:
        """Every point a local module may end at, in forward order (the family's ``cuts`` parameter takes a
        selection of them); a family without such a parameter has none to offer."""
        raise ValueError(f"Model {self.name!r} does not take explicit cut points (no 'cuts' parameter); "
                         "the CIFAR ResNets (resnet20, resnet32, resnet56, resnet110) do.")

    @classmethod
    def tiny(cls, stages: int) -> ModelFamily:
        """A small instance with ``stages`` stages, for conformance checks."""
        raise NotImplementedError

    def example_batch(self, n: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch ``(x, y)`` this family's nets accept (for ``tiny_input_shape``)."""
        x = torch.randn(n, *self.tiny_input_shape, generator=generator)
        return x, torch.randint(0, num_classes, (n,), generator=generator)

    def get_params(self) -> dict[str, Any]:
        """The family's hyper-parameters, for logging a run's full config."""
        return get_params(self)


MODELS: Registry[ModelFamily] = Registry("model", group="locallearn.models")
