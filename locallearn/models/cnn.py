"""``cnn``: one stage per entry of ``channels`` (``Conv3x3 -> BatchNorm -> ReLU (-> MaxPool)``).

Example:
    >>> from locallearn import models
    >>> models.build("cnn", (1, 8, 8), 10, channels=(8, 8)).num_exits
    2
"""

from __future__ import annotations

from typing import Any, Sequence

from locallearn.builders import build_cnn, check_sizes
from locallearn.models.base import MODELS, ModelFamily
from locallearn.net import LocalNet


@MODELS.register("cnn")
class CNN(ModelFamily):
    """A small convolutional net; ``channels`` gives one stage per convolution."""

    default_head = "conv"
    tiny_input_shape = (1, 4, 4)

    def __init__(
        self,
        *,
        channels: Sequence[int] = (32, 64, 64),
        batch_norm: bool = True,
        head: str | None = None,
        head_kw: dict[str, Any] | None = None,
    ) -> None:
        self.channels = tuple(check_sizes(channels, name="channels", owner="CNN"))
        self.batch_norm = batch_norm
        self.head = head
        self.head_kw = head_kw

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        return build_cnn(
            input_shape, self.channels, num_classes, batch_norm=self.batch_norm,
            head=self.head or self.default_head, head_kw=self.head_kw or {},
        )

    def num_stages(self) -> int:
        return len(self.channels)

    def describe(self) -> str:
        return f"cnn {'-'.join(map(str, self.channels))}"

    @classmethod
    def tiny(cls, stages: int) -> CNN:
        return cls(channels=(4,) * stages)
