"""Train a ``char-lm`` by ``e2e``, ``joint`` (LayerSkip's early-exit loss) or ``local``, and score it in bits per character.

* ``e2e``: the last exit's next-character loss through every block (the shared unembedding learns
  from it alone, so the early exits only read the last exit's head);
* ``joint``: LayerSkip's early-exit loss (Elhoushi et al. 2024): ``sum_l e_l CE_l`` over every exit,
  with the authors' default scale ``e_l`` proportional to ``1 + 2 + ... + l`` (``sum_l``), times
  ``e_scale`` for every exit but the last, normalised to sum 1 (:func:`layerskip_weights`). Not kept:
  their curriculum over training steps and their layer dropout;
* ``local``: every block learns from its own exit's next-character loss (inputs detached).

One Adam optimiser holds every parameter once (the unembedding is shared among the stages).

Example:
    >>> layerskip_weights(3)
    (0.1, 0.3, 0.6)
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from locallearn._params import check_choice, check_number
from locallearn.engine import backward
from locallearn.lm.corpus import Corpus
from locallearn.net import LocalNet
from locallearn.rules import EndToEnd, JointSupervision, LocalCrossEntropy, LocalRule

LM_RULES = ("e2e", "joint", "local")


def layerskip_weights(n_exits: int, e_scale: float = 1.0) -> tuple[float, ...]:
    """LayerSkip's normalised early-exit loss scales (``sum_l`` type): ``e_l = e_scale * l (l + 1) / 2``
    for exits ``l = 1 .. L - 1`` and ``L (L + 1) / 2`` for the last, divided by their sum."""
    check_number(n_exits, name="n_exits", owner="layerskip_weights", low=1, integer=True)
    check_number(e_scale, name="e_scale", owner="layerskip_weights", low=0.0)
    raw = [l * (l + 1) / 2 * (e_scale if l < n_exits else 1.0) for l in range(1, n_exits + 1)]
    return tuple(round(r / sum(raw), 12) for r in raw)


def lm_rule(name: str, n_exits: int, *, e_scale: float = 1.0) -> LocalRule:
    """The rule instance ``name`` means for a language model with ``n_exits`` exits."""
    check_choice(name, name="rule", owner="train_lm", choices=LM_RULES)
    if name == "e2e":
        return EndToEnd(probe_heads=False)  # probes would train the shared unembedding from the early exits
    if name == "joint":
        return JointSupervision(weights=layerskip_weights(n_exits, e_scale))
    return LocalCrossEntropy()


def train_lm(
    net: LocalNet, corpus: Corpus, rule: str, *, steps: int, batch_size: int, context: int, lr: float = 3e-3,
    seed: int = 0, e_scale: float = 1.0,
) -> list[list[float]]:
    """Train ``net`` for ``steps`` batches of random training windows; returns each step's per-exit losses.

    Adam with a cosine decay of the learning rate to zero and gradient clipping at norm 1 (GPT recipe).
    """
    check_number(steps, name="steps", owner="train_lm", low=1, integer=True)
    generator = torch.Generator().manual_seed(seed)
    instance = lm_rule(rule, net.num_exits, e_scale=e_scale)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    net.train()
    history = []
    for _ in range(steps):
        x, y = corpus.windows("train", context=context, batch_size=batch_size, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        step = backward(net, x, y, instance, optimizer=optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history.append(step.losses)
    return history


@torch.no_grad()
def bits_per_char(net: LocalNet, ids: torch.Tensor, *, context: int, batch_size: int = 64) -> list[float]:
    """Every exit's mean next-character cross-entropy in bits over ``ids``, cut into consecutive windows of
    ``context`` characters (each predicted from the window's earlier characters only)."""
    n = (len(ids) - 1) // context
    if n < 1:
        raise ValueError(f"bits_per_char needs more than {context} characters; got {len(ids)}.")
    x = ids[: n * context].view(n, context)
    y = ids[1 : n * context + 1].view(n, context)
    was = net.training
    net.eval()
    total = torch.zeros(net.num_exits, dtype=torch.float64)
    try:
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            for k, logits in enumerate(net(xb)):
                total[k] += F.cross_entropy(logits.flatten(0, 1), yb.reshape(-1), reduction="sum").double()
    finally:
        net.train(was)
    return (total / (n * context) / math.log(2)).tolist()
