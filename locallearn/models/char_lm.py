"""``char-lm``: a small decoder-only character language model with an exit after every block.

Token and position embeddings, then ``depth`` causal pre-norm blocks
(``locallearn.models.transformer``); stage ``k`` holds ``blocks_per_stage`` blocks (the first also
the embeddings). Every exit reads its stage's tokens through ONE shared unembedding (final
LayerNorm and linear read-out, the same module in every stage), as LayerSkip (Elhoushi et al.
2024) and CALM (Schuster et al. 2022) share the LM head among exits. The input is ``(B, T)``
character ids, every exit gives ``(B, T, vocab)`` next-character logits, and the labels are the
``(B, T)`` next characters (the engine's per-position labels: rules ``e2e``, ``joint``, ``local``).

The input shape ``(T,)`` is the context length (learned positions up to it); ``num_classes`` is the
vocabulary size. A shared head is one parameter set in every stage: train it with ONE optimiser
over ``net.parameters()`` (``locallearn.lm.train``), not the Trainer's one optimiser per stage.

Example:
    >>> import torch
    >>> from locallearn import models
    >>> net = models.build("char-lm", (16,), 30, dim=32, depth=3, heads=2)
    >>> [tuple(z.shape) for z in net(torch.zeros(2, 16, dtype=torch.long))]
    [(2, 16, 30), (2, 16, 30), (2, 16, 30)]
    >>> net.stages[0].head is net.stages[2].head
    True
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from locallearn._params import check_number
from locallearn.models.base import MODELS
from locallearn.models.transformer import TransformerFamily
from locallearn.net import LocalNet


class TokenEmbedding(nn.Module):
    """``(B, T)`` ids to ``(B, T, dim)``: token embedding plus the learned position of each step."""

    def __init__(self, vocab: int, context: int, dim: int) -> None:
        super().__init__()
        self.context = context
        self.token = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(context, dim)
        for table in (self.token, self.position):
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        if start + ids.shape[1] > self.context:
            raise ValueError(f"char-lm has {self.context} positions; got steps {start}..{start + ids.shape[1] - 1}.")
        return self.token(ids) + self.position.weight[start : start + ids.shape[1]]


class Unembedding(nn.Module):
    """Final LayerNorm and linear read-out of every position: ``(B, T, dim) -> (B, T, vocab)``."""

    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.norm, self.linear = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(h))


@MODELS.register("char-lm")
class CharLM(TransformerFamily):
    """A causal character LM; ``depth // blocks_per_stage`` exits sharing one unembedding."""

    default_head = "unembedding"
    tiny_input_shape = (8,)

    def __init__(
        self, *, dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, blocks_per_stage: int = 1,
    ) -> None:
        super().__init__(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, blocks_per_stage=blocks_per_stage)

    def build(self, input_shape: Sequence[int], num_classes: int) -> LocalNet:
        if len(input_shape) != 1:
            raise ValueError(f"char-lm takes (T,) character ids (T = the context length); got input shape {tuple(input_shape)}.")
        check_number(num_classes, name="num_classes (vocabulary size)", owner="CharLM", low=2, integer=True)
        embedding = TokenEmbedding(num_classes, input_shape[0], self.dim)
        head = Unembedding(self.dim, num_classes)
        return self.stages(embedding, lambda: head, causal=True, input_shape=input_shape, input_dtype=torch.long)

    def describe(self) -> str:
        return f"char-lm d{self.dim} x{self.depth}"

    @classmethod
    def tiny(cls, stages: int) -> CharLM:
        return cls(dim=8, depth=stages, heads=2)

    def example_batch(self, n: int, num_classes: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randint(0, num_classes, (n, self.tiny_input_shape[0] + 1), generator=generator)
        return ids[:, :-1], ids[:, 1:]
