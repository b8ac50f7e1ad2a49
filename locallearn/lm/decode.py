"""Greedy decoding of a ``char-lm`` with a KV cache: the full model, self-speculative decoding, CALM exits.

* :func:`greedy` - the full model, one new token per step, keys and values of earlier positions cached
  (``cache=False`` recomputes the whole sequence every step: the reference);
* :func:`speculative` - self-speculative decoding (LayerSkip, Elhoushi et al. 2024): draft ``draft``
  tokens with the first ``exit`` stages and the shared unembedding, then verify them with the remaining
  stages in ONE pass over the drafted positions, reusing the draft's hidden states and cache of the
  first stages; the longest prefix the full model agrees with is kept, plus the full model's own token
  at the first disagreement, and the cache is cropped to what was kept. Every kept token is the full
  model's greedy token, so the output equals :func:`greedy`'s (up to floating-point near-ties between
  the one-pass and the step-by-step computation);
* :func:`calm` - per-token early exit (CALM, Schuster et al. 2022): after each stage the shared head's
  softmax response (top-1 minus top-2 probability) is compared with ``threshold``; a token that exits
  copies its hidden state to the skipped layers, whose keys and values are computed from it (CALM's
  state propagation), so later tokens can attend to it in every layer.

Every function takes a 1-D prompt of ids and returns the ``new`` generated ids (1-D).

Example:
    >>> import torch
    >>> from locallearn import models
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = models.build("char-lm", (32,), 12, dim=16, depth=4, heads=2).eval()
    >>> prompt = torch.tensor([1, 2, 3])
    >>> full = greedy(net, prompt, 10)
    >>> torch.equal(full, greedy(net, prompt, 10, cache=False)), torch.equal(full, speculative(net, prompt, 10, exit=1, draft=3)[0])
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from locallearn.models.transformer import KVCache
from locallearn.net import LocalNet


def _check(net: LocalNet, prompt: torch.Tensor, new: int) -> None:
    if prompt.dim() != 1 or len(prompt) < 1 or prompt.is_floating_point():
        raise ValueError(f"A prompt is a non-empty 1-D tensor of character ids; got shape {tuple(prompt.shape)}, dtype {prompt.dtype}.")
    context = net.stages[0].block.embedding.context
    if len(prompt) + new > context:
        raise ValueError(f"The model has {context} positions; a prompt of {len(prompt)} plus {new} new tokens needs {len(prompt) + new}.")


def _prefill(net: LocalNet, prompt: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Run ``prompt`` through every stage, filling ``cache``; return the last stage's hidden states."""
    h = prompt[None]
    for stage in net.stages:
        h = stage.block(h, cache, 0)
    return h


def _next(net: LocalNet, h: torch.Tensor) -> int:
    return int(net.stages[-1].head(h[:, -1:])[0, -1].argmax())


@torch.inference_mode()
def greedy(net: LocalNet, prompt: torch.Tensor, new: int, *, cache: bool = True) -> torch.Tensor:
    """The full model's greedy continuation of ``prompt`` by ``new`` ids (with a KV cache unless ``cache=False``)."""
    _check(net, prompt, new)
    seq = prompt.tolist()
    if not cache:
        for _ in range(new):
            seq.append(int(net(torch.tensor([seq]))[-1][0, -1].argmax()))
        return torch.tensor(seq[len(prompt):])
    kv = KVCache()
    token = _next(net, _prefill(net, prompt, kv))
    for i in range(new):
        seq.append(token)
        if i == new - 1:
            break
        h = torch.tensor([[token]])
        for stage in net.stages:
            h = stage.block(h, kv, len(seq) - 1)
        token = _next(net, h)
    return torch.tensor(seq[len(prompt):])


@dataclass
class SpeculativeStats:
    """How self-speculative decoding went: tokens drafted, drafted tokens accepted, verification passes."""

    drafted: int = 0
    accepted: int = 0
    rounds: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


@torch.inference_mode()
def speculative(net: LocalNet, prompt: torch.Tensor, new: int, *, exit: int, draft: int) -> tuple[torch.Tensor, SpeculativeStats]:
    """Self-speculative greedy decoding: draft with the first ``exit`` stages, verify with the rest."""
    _check(net, prompt, new)
    stages, head = net.stages, net.stages[-1].head
    if not 1 <= exit < len(stages) or draft < 1:
        raise ValueError(f"speculative needs 1 <= exit < {len(stages)} (the draft's stages) and draft >= 1; got exit={exit}, draft={draft}.")
    kv, stats = KVCache(), SpeculativeStats()
    seq = prompt.tolist()
    if len(prompt) > 1:
        _prefill(net, prompt[:-1], kv)  # the last prompt id is the first input of the first round
    target = len(prompt) + new
    while len(seq) < target:
        k, position = min(draft, target - len(seq)), len(seq) - 1  # seq[-1] is not in the cache yet
        token, drafts, states = seq[-1], [], []
        for i in range(k):
            h = torch.tensor([[token]])
            for stage in stages[:exit]:
                h = stage.block(h, kv, position + i)
            states.append(h)
            token = int(head(h)[0, -1].argmax())
            drafts.append(token)
        h = torch.cat(states, 1)
        for stage in stages[exit:]:
            h = stage.block(h, kv, position)
        full = head(h)[0].argmax(-1).tolist()  # full[i]: the full model's id for position + i + 1
        m = 0
        while m < k and drafts[m] == full[m]:
            m += 1
        seq += drafts if m == k else drafts[:m] + [full[m]]
        kv.crop(len(seq) - 1)
        stats.drafted, stats.accepted, stats.rounds = stats.drafted + k, stats.accepted + m, stats.rounds + 1
    return torch.tensor(seq[len(prompt):]), stats


def softmax_response(logits: torch.Tensor) -> torch.Tensor:
    """CALM's softmax-response confidence: the top-1 minus the top-2 probability of each row.

    Example:
        >>> round(float(softmax_response(torch.log(torch.tensor([[0.7, 0.2, 0.1]])))[0]), 6)
        0.5
    """
    top = torch.softmax(logits.float(), -1).topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


@torch.inference_mode()
def calm(net: LocalNet, prompt: torch.Tensor, new: int, *, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding where each token leaves at the first stage whose softmax response is >= ``threshold``
    (``inf``: never early); returns the ids and the stage (from 0) each one left at."""
    _check(net, prompt, new)
    stages, head = net.stages, net.stages[-1].head
    kv = KVCache()
    seq, exits = prompt.tolist(), []
    if len(prompt) > 1:
        _prefill(net, prompt[:-1], kv)
    for _ in range(new):
        position = len(seq) - 1
        h = torch.tensor([[seq[-1]]])
        for k, stage in enumerate(stages):
            h = stage.block(h, kv, position)
            logits = head(h)[0, -1]
            if k == len(stages) - 1 or float(softmax_response(logits)) >= threshold:
                for later in stages[k + 1 :]:
                    for i, block in enumerate(later.block.blocks):
                        block.fill_cache(h, kv, later.block.first_layer + i)
                seq.append(int(logits.argmax()))
                exits.append(k)
                break
    return torch.tensor(seq[len(prompt):]), torch.tensor(exits)
