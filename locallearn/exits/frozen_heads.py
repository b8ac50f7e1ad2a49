"""Backbone first, then heads (survey sec. 5.4, Fig. 3(b); Shallow-Deep Networks' "IC-only" training).

The recipe, in three calls:

1. train the backbone end-to-end through its last exit only, e.g.
   ``locallearn.train(net, ds, rule=EndToEnd(probe_heads=False))``;
2. :func:`freeze_backbone`: every block and the last head stop learning;
3. train each auxiliary head on the frozen features: :func:`fit_heads` for the
   network's own (neural) heads, or :func:`fit_sklearn_heads` to put fitted
   scikit-learn classifiers in their place.

The frozen features are the blocks' outputs in eval mode (BatchNorm running
statistics, no dropout): exactly what the heads will see at inference. The
backbone's accuracy at the last exit is untouched by step 3, by construction.

Example:
    >>> import torch
    >>> from locallearn import build_mlp
    >>> net = build_mlp((4,), (8, 8), 3)
    >>> x, y = torch.randn(64, 4), torch.arange(64) % 3
    >>> freeze_backbone(net)
    >>> last_before = net.stages[-1].head.linear.weight.clone()
    >>> losses = fit_heads(net, x, y, epochs=2, batch_size=16)
    >>> len(losses), torch.equal(net.stages[-1].head.linear.weight, last_before)
    (1, True)
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch.nn import functional as F

from .._params import check_number
from .runner import _stages
from .sklearn_heads import SklearnHead


def freeze_backbone(net: Any) -> None:
    """Stop every block and the last head from learning (``requires_grad = False``)."""
    stages = _stages(net)
    for module in [s.block for s in stages] + [stages[-1].head]:
        module.requires_grad_(False)


@torch.no_grad()
def frozen_features(net: Any, x: torch.Tensor, *, upto: int | None = None, batch_size: int = 512) -> list[torch.Tensor]:
    """Eval-mode outputs of blocks ``0..upto`` (default: all) over ``x``, computed in batches."""
    stages = _stages(net)
    upto = len(stages) - 1 if upto is None else upto
    chunks: list[list[torch.Tensor]] = [[] for _ in range(upto + 1)]
    for xb in x.split(batch_size):
        for k, h in enumerate(_block_outputs(stages, xb, upto)):
            chunks[k].append(h)
    return [torch.cat(c) for c in chunks]


def _block_outputs(stages: Sequence[Any], x: torch.Tensor, upto: int) -> list[torch.Tensor]:
    out, h = [], x
    for stage in stages[: upto + 1]:
        was_training = stage.block.training
        stage.block.eval()
        h = stage.block(h)
        stage.block.train(was_training)
        out.append(h)
    return out


def _auxiliary(net: Any, stages: Sequence[int] | None) -> list[int]:
    n = len(_stages(net))
    chosen = list(range(n - 1)) if stages is None else [int(k) for k in stages]
    if not chosen or any(not 0 <= k < n - 1 for k in chosen):
        raise ValueError(f"The heads to fit must be auxiliary exits in 0..{n - 2} (the last head belongs to the backbone). Got {stages!r} instead.")
    return chosen


def _check_xy(x: torch.Tensor, y: torch.Tensor, owner: str) -> None:
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{owner} needs as many labels as inputs (at least one). Got {len(x)} inputs and {len(y)} labels.")


def fit_heads(
    net: Any, x: torch.Tensor, y: torch.Tensor, *, stages: Sequence[int] | None = None, epochs: int = 1,
    lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
) -> list[float]:
    """Train the neural heads of ``stages`` (default: every auxiliary exit) with Adam and cross-entropy on the
    frozen features of ``x``; the blocks run in eval mode under ``no_grad``. Returns each head's mean loss in
    the last epoch."""
    check_number(epochs, name="epochs", owner="fit_heads", low=1, integer=True)
    check_number(lr, name="lr", owner="fit_heads", low=0.0, low_inclusive=False)
    check_number(batch_size, name="batch_size", owner="fit_heads", low=1, integer=True)
    _check_xy(x, y, "fit_heads")
    all_stages = _stages(net)
    chosen = _auxiliary(net, stages)
    heads = [all_stages[k].head for k in chosen]
    optimisers = [torch.optim.Adam(head.parameters(), lr=lr) for head in heads]
    generator = torch.Generator().manual_seed(seed)
    for head in heads:
        head.requires_grad_(True).train()
    totals = [0.0] * len(chosen)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        totals, batches = [0.0] * len(chosen), 0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            with torch.no_grad():
                features = _block_outputs(all_stages, x[index], max(chosen))
            for i, (k, head, opt) in enumerate(zip(chosen, heads, optimisers)):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(head(features[k]), y[index])
                loss.backward()
                opt.step()
                totals[i] += loss.item()
            batches += 1
        totals = [t / max(batches, 1) for t in totals]
    if any(not math.isfinite(t) for t in totals):
        raise FloatingPointError(f"fit_heads: a head's loss became non-finite ({totals}); lower lr.")
    return totals


def fit_sklearn_heads(
    net: Any, x: torch.Tensor, y: torch.Tensor, estimators: Mapping[int, Any], *, pool: int | None = None,
    max_samples: int | None = None, seed: int = 0,
) -> list[SklearnHead]:
    """Fit one scikit-learn classifier per auxiliary exit (``{stage: estimator}``) on the frozen features of
    ``x`` (a random ``max_samples`` rows of it when given) and put it in place of that stage's head."""
    _check_xy(x, y, "fit_sklearn_heads")
    stages = _stages(net)
    chosen = _auxiliary(net, list(estimators))
    if max_samples is not None:
        check_number(max_samples, name="max_samples", owner="fit_sklearn_heads", low=1, integer=True)
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_samples]
        x, y = x[rows], y[rows]
    features = frozen_features(net, x, upto=max(chosen))
    with torch.no_grad():
        num_classes = stages[-1].head(frozen_features(net, x[:1])[-1]).shape[-1]
    fitted = []
    for k in chosen:
        head = SklearnHead(estimators[k], num_classes=num_classes, pool=pool).fit(features[k], y)
        stages[k].head = head
        fitted.append(head)
    return fitted


