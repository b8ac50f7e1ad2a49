"""``Stage`` (a block plus its head) and ``LocalNet`` (a chain of stages whose heads are exits).

Data flows one way: ``x -> block_1 -> h_1 -> block_2 -> ... -> h_L`` and each
``h_k -> head_k -> logits_k``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = LocalNet([Stage(nn.Linear(4, 8), nn.Linear(8, 3)), Stage(nn.Linear(8, 8), nn.Linear(8, 3))])
    >>> [logits.shape for logits in net(torch.zeros(2, 4))]
    [torch.Size([2, 3]), torch.Size([2, 3])]

The net records each stage's input, output and exit shapes (``stage_shapes``), so a rule sizes
the modules it attaches from them instead of guessing from a block's layer types:

    >>> net = LocalNet([Stage(nn.Linear(4, 8), nn.Linear(8, 3))], input_shape=(4,))
    >>> net.stage_shapes()[0]
    StageShape(input=(4,), output=(8,), exit=(3,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from locallearn.heads_cascade import head_logits


class Stage(nn.Module):
    """One block of layers and its auxiliary head.

    ``aux`` holds any extra trainable modules a rule attaches to this stage (for
    example a similarity projection); they belong to the stage, so they are
    optimised and checkpointed with it.
    """

    def __init__(self, block: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.head = head
        self.aux = nn.ModuleDict()

    def forward(self, h: torch.Tensor, previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(features, logits)`` of this stage for its input ``h``; ``previous`` (the logits of the
        exit before) reaches a head that cascades (``locallearn.heads_cascade``)."""
        features = self.block(h)
        return features, head_logits(self.head, features, previous)


def layout(shape: Sequence[int]) -> str:
    """``"flat"`` for ``(D,)``, ``"tokens"`` for ``(T, D)`` (``locallearn.tokens``), ``"map"`` for ``(C, H, W)``: the
    layout of features of ``shape`` (without the batch)."""
    return {1: "flat", 2: "tokens"}.get(len(shape), "map")


def width(shape: Sequence[int]) -> int:
    """The width a layer fed features of ``shape`` takes: every value of a flat vector, a token's width, a map's channels."""
    kind = layout(shape)
    return math.prod(shape) if kind == "flat" else shape[-1] if kind == "tokens" else shape[0]


@dataclass(frozen=True)
class StageShape:
    """Shapes (without the batch) of one stage's input, block output and exit logits."""

    input: tuple[int, ...]
    output: tuple[int, ...]
    exit: tuple[int, ...]

    @property
    def kind(self) -> str:
        """The layout of the block's output: ``"flat"``, ``"tokens"`` or ``"map"`` (see ``layout``)."""
        return layout(self.output)

    @property
    def width(self) -> int:
        """Features of the block's output, tokens' width or map channels (see ``width``)."""
        return width(self.output)


class LocalNet(nn.Module):
    """A sequence of stages; ``forward`` returns the logits of every exit.

    ``input_shape`` (without the batch) and ``input_dtype`` describe the network input, so that
    ``stage_shapes`` can probe the stages with ``probe_rows`` rows of zeros (a net that takes a
    whole graph at once says how many rows it needs). A net built without them takes them from its
    first ``forward`` (or ``locallearn.backward``) batch.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        input_shape: Sequence[int] | None = None,
        input_dtype: torch.dtype = torch.float32,
        probe_rows: int = 2,
    ) -> None:
        super().__init__()
        if len(stages) == 0:
            raise ValueError("A LocalNet needs at least one stage.")
        self.stages = nn.ModuleList(stages)
        self.input_shape = None if input_shape is None else tuple(int(n) for n in input_shape)
        self.input_dtype = input_dtype
        self.probe_rows = probe_rows
        self._shapes: tuple[tuple[int, ...], list[StageShape]] | None = None  # (modules' ids, shapes)
        # The rules whose setup ran on this net (or that were bound to it), and the instance each registered
        # name gave (``locallearn.prepare``): state of the net, so a deep copy of it is prepared too.
        self.prepared_rules: list[Any] = []
        self.named_rules: dict[str, Any] = {}

    def note_input(self, x: torch.Tensor) -> None:
        """Take the input's shape and dtype from a batch ``x`` when the net was built without them."""
        if self.input_shape is None:
            self.input_shape, self.input_dtype = tuple(x.shape[1:]), x.dtype

    def stage_shapes(self) -> list[StageShape]:
        """Each stage's input, output and exit shapes (without the batch), first to last.

        Recorded once, at the first call, by a dry forward of ``probe_rows`` rows of zeros of the
        input shape under ``no_grad`` with every stage in eval mode (BatchNorm statistics, dropout and
        the random generators are left untouched); recorded again only when a stage's block or head
        is replaced (as Forward-Forward's setup does).
        """
        modules = tuple(id(m) for stage in self.stages for m in (stage.block, stage.head))
        if self._shapes is not None and self._shapes[0] == modules:
            return list(self._shapes[1])
        if self.input_shape is None:
            raise ValueError(
                "This LocalNet does not know its input shape, so it cannot record its stages' shapes; build it with "
                "LocalNet(stages, input_shape=...) (the builders, model families and wrap do) or run one batch through it first."
            )
        parameter = next(self.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        h = torch.zeros(self.probe_rows, *self.input_shape, dtype=self.input_dtype, device=device)
        shapes = []
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            with torch.no_grad():
                for stage in self.stages:
                    out, logits = stage(h)
                    shapes.append(StageShape(tuple(h.shape[1:]), tuple(out.shape[1:]), tuple(logits.shape[1:])))
                    h = out
        finally:
            for module, mode in modes:
                module.training = mode
        self._shapes = (modules, shapes)
        return list(shapes)

    @property
    def num_exits(self) -> int:
        return len(self.stages)

    def forward(
        self, x: torch.Tensor, *, return_features: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Logits of every exit, first to last; with ``return_features`` also each block's output."""
        self.note_input(x)
        logits, features = [], []
        h, out = x, None
        for stage in self.stages:
            h, out = stage(h, out)
            features.append(h)
            logits.append(out)
        return (logits, features) if return_features else logits


@torch.no_grad()
def output_shapes(modules: Sequence[nn.Module], input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Shape (without batch) after each module when fed in order from ``input_shape``.

    Probes with a batch of two in eval mode, so BatchNorm and dropout leave no trace.
    """
    shapes = []
    h = torch.zeros(2, *input_shape)
    for module in modules:
        was_training = module.training
        module.eval()
        try:
            h = module(h)
        finally:
            module.train(was_training)
        shapes.append(tuple(h.shape[1:]))
    return shapes
