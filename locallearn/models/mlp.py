"""``mlp``: one stage per hidden layer (``Linear (-> BatchNorm1d) -> activation (-> Dropout)``).

Example:
    >>> from locallearn import models
    >>> models.build("mlp", (1, 8, 8), 10, widths=(32, 32)).num_exits
    2
"""

from __future__ import annotations

from typing import Any, Sequence

from locallearn.builders import build_mlp, check_sizes
from locallearn.models.base import MODELS, ModelFamily
from locallearn.net import LocalNet


@MODELS.register("mlp")
class MLP(ModelFamily):
    """A multi-layer perceptron; ``widths`` gives one stage per hidden layer (``batch_norm``: Linear ->
    BatchNorm1d -> activation, Nøkland & Eidnes' block)."""

    default_head = "linear"
    tiny_input_shape = (16,)

    def __init__(
        self,
        *,
        widths: Sequence[int] = (256, 256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        head: str | None = None,
        head_kw: dict[str, Any] | None = None,
    ) -> None:
        self.widths = tuple(check_sizes(widths, name="widths", owner="MLP"))
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = bool(batch_norm)
        self.head = head
        self.head_kw = head_kw

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        return build_mlp(
            input_shape, self.widths, num_classes, activation=self.activation, dropout=self.dropout,
            batch_norm=self.batch_norm, head=self.head or self.default_head, head_kw=self.head_kw or {},
        )

    def num_stages(self) -> int:
        return len(self.widths)

    def describe(self) -> str:
        return f"mlp {'-'.join(map(str, self.widths))}"

    @classmethod
    def tiny(cls, stages: int) -> MLP:
        return cls(widths=(12,) * stages)
