"""Registered model families: each builds a ``LocalNet`` cut into local stages.

``create(name, **hyper_parameters)`` gives a family (an unknown name lists the known
ones); ``build(name, input_shape, num_classes, **hyper_parameters)`` its network.
A new architecture is one ``ModelFamily`` subclass in one file with
``@MODELS.register("name")``, imported below; ``locallearn.testing.check_model`` is
its conformance check.

Example:
    >>> from locallearn import models
    >>> "mlp" in models.names() and "cnn" in models.names()
    True
    >>> net = models.build("cnn", (1, 8, 8), 10, channels=(8, 16))
    >>> net.num_exits
    2
"""

from __future__ import annotations

from typing import Any, Sequence

from locallearn.models.base import MODELS, ModelFamily
from locallearn.models import char_lm, cnn, gcn, mlp, resnet, vgg, vit  # noqa: F401  (registers the families)
from locallearn.net import LocalNet


def names() -> list[str]:
    """The registered model names."""
    return MODELS.names()


def create(spec: str | ModelFamily, **hyper_parameters: Any) -> ModelFamily:
    """A model family from its name and keyword hyper-parameters, or a ready instance."""
    return MODELS.create(spec, **hyper_parameters)


def build(spec: str | ModelFamily, input_shape: Sequence[int], num_classes: int, **hyper_parameters: Any) -> LocalNet:
    """The ``LocalNet`` of a named family for ``input_shape`` and ``num_classes``."""
    return create(spec, **hyper_parameters).build(input_shape, num_classes)


__all__ = ["MODELS", "ModelFamily", "build", "create", "names"]
