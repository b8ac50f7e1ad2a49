"""Where to cut a network into K local modules: a SEDONA-style search with a cheap proxy.

SEDONA (Pyeon, Moon, Hahn & Kim, ICLR 2021, "SEDONA: Search for Decoupled Neural Networks toward
Greedy Block-wise Learning"; authors' code ``mjpyeon/sedona``) gives every candidate decoupling
point ``i`` a variable ``alpha_i``: in the relaxed network the gradient reaching the layers below
``i`` mixes the local loss at ``i`` and the loss from above with weights ``softmax(alpha_i)``, and
``alpha`` follows the gradient of the validation loss after ``T`` inner training steps (a
second-order meta-gradient, from weights sampled out of a memory of training snapshots). The
K - 1 cuts are then the candidates with the largest decoupling probability
``softmax(alpha_i)[0]`` (``models/base.py``, ``update_model``: a top-(K - 1) over candidates scored
one by one). SEDONA also chooses each module's auxiliary net (``beta``); that part is not searched here.

The proxy used here keeps that selection (independent scores, the best K - 1 kept) and replaces the
meta-gradient by the quantity it estimates, measured directly: for each candidate, the network is
cut **there alone** (K = 2), trained for ``steps`` steps with the given rule (the units below learn
from the local head at the candidate, those above from the last exit), and the candidate's score is
the **last exit's validation cross-entropy** afterwards (SEDONA's meta-objective). Every candidate
starts from the same initialisation (one seed) and sees the same batches, so the scores differ
only by where the cut is. Why this proxy: it needs no second-order gradients, no weight memory and
no relaxed network (a few hundred plain training steps per candidate, which a CPU can afford for a
ResNet-20), and it measures what a cut costs the final prediction rather than how well the local
head alone predicts (a local head's own accuracy only grows with depth, so ranking by it would
push every cut to the end). Departures from SEDONA: the scores are read once, after ``steps`` steps
from initialisation (SEDONA averages its meta-gradient over snapshots from the whole training run),
and candidates are scored alone, not in the presence of the other cuts.

Example:
    >>> import torch
    >>> from locallearn.data import Dataset
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 1, 8, 8, generator=g); y = (x.mean((1, 2, 3)) > 0).long()
    >>> ds = Dataset("toy", x, y, x, y, x, y, num_classes=2)
    >>> found = search_cuts("resnet20", 3, ds, model_kw={"widths": (4, 4, 8)}, steps=2, batch_size=16)
    >>> len(found.cuts), len(found.scores) == len(found.candidates) == 9
    (2, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch.nn import functional as F

from locallearn import models
from locallearn._params import check_number
from locallearn.data import Dataset
from locallearn.engine import backward, prepare
from locallearn.models.base import ModelFamily
from locallearn.trainer import seed_everything

PROXY = "last-exit validation cross-entropy after a short training with the network cut at the candidate alone"


@dataclass(frozen=True)
class CutSearch:
    """The cuts a search chose and what it measured for every candidate (in forward order)."""

    model: str
    num_stages: int
    candidates: tuple[Any, ...]
    scores: tuple[float, ...]  # the proxy: last exit's validation cross-entropy (lower is better)
    last_exit_accuracy: tuple[float, ...]  # validation accuracy of the last exit, per candidate
    local_exit_accuracy: tuple[float, ...]  # validation accuracy of the local exit at the candidate
    cuts: tuple[Any, ...]  # the chosen K - 1 candidates, in forward order
    steps: int
    proxy: str = PROXY

    @property
    def indices(self) -> tuple[int, ...]:
        """Positions of the chosen cuts among the candidates."""
        return tuple(self.candidates.index(c) for c in self.cuts)


def choose_cuts(scores: list[float], num_stages: int) -> list[int]:
    """The ``num_stages - 1`` candidate positions with the lowest scores (ties: the earlier), in forward order.

    Example:
        >>> choose_cuts([0.9, 0.2, 0.5, 0.1], 3)
        [1, 3]
    """
    if not 1 <= num_stages <= len(scores) + 1:
        raise ValueError(f"K must be in 1..{len(scores) + 1} (the candidates plus one); got {num_stages}.")
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    return sorted(order[: num_stages - 1])


def _family(model: str | type[ModelFamily], **kw: Any) -> ModelFamily:
    return models.create(model, **kw) if isinstance(model, str) else model(**kw)


def score_cut(
    model: str | type[ModelFamily], cut: Any, data: Dataset, *, model_kw: Mapping[str, Any], rule: str, steps: int,
    batch_size: int, lr: float, seed: int, val_size: int,
) -> tuple[float, float, float]:
    """``(last exit's validation loss, its accuracy, the local exit's accuracy)`` after ``steps`` SGD steps
    (momentum 0.9) of the network cut at ``cut`` alone, from the initialisation and batch order of ``seed``."""
    seed_everything(seed)
    net = _family(model, stages=2, cuts=[cut], **model_kw).build(data.input_shape, data.num_classes)
    rule_obj = prepare(net, rule)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    order = torch.Generator().manual_seed(seed)
    n = len(data.x_train)
    batches_per_pass = max(1, n // batch_size)
    perm = torch.randperm(n, generator=order)
    net.train()
    for step in range(steps):
        if step and step % batches_per_pass == 0:
            perm = torch.randperm(n, generator=order)
        idx = perm[(step % batches_per_pass) * batch_size:][:batch_size]
        optimizer.zero_grad(set_to_none=True)
        backward(net, data.x_train[idx], data.y_train[idx], rule_obj)
        optimizer.step()
    net.eval()
    with torch.no_grad():
        x, y = data.x_val[:val_size], data.y_val[:val_size]
        local, last = net(x)
        loss = float(F.cross_entropy(last, y))
        return (loss if math.isfinite(loss) else math.inf, float((last.argmax(1) == y).double().mean()),
                float((local.argmax(1) == y).double().mean()))


def search_cuts(
    model: str | type[ModelFamily],
    num_stages: int,
    data: Dataset,
    *,
    model_kw: Mapping[str, Any] | None = None,
    rule: str = "local",
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    val_size: int = 1000,
) -> CutSearch:
    """Choose ``num_stages - 1`` cut points of ``model`` by the proxy of this module's docstring.

    Args:
        model: a registered model family whose constructor takes ``stages`` and ``cuts`` and which lists its
            ``candidate_cuts()`` (the CIFAR ResNets), or such a class.
        num_stages: K, the number of local modules.
        data: training batches are drawn from its training split; the proxy is read on its validation split
            (the first ``val_size`` images), never on the test split.
        model_kw: the family's other hyper-parameters (``widths``, ``head`` ...).
        rule: the local rule trained below each candidate (``local``: its head's cross-entropy).
        steps, batch_size, lr: the short training of each candidate (SGD, momentum 0.9).
        seed: one initialisation and one batch order shared by every candidate.
    """
    owner = "search_cuts"
    for name, value in (("steps", steps), ("batch_size", batch_size), ("val_size", val_size)):
        check_number(value, name=name, owner=owner, low=1, integer=True)
    check_number(lr, name="lr", owner=owner, low=0.0, low_inclusive=False)
    if len(data.x_val) == 0:
        raise ValueError("search_cuts reads its proxy on the validation split, and this dataset's is empty.")
    model_kw = dict(model_kw or {})
    candidates = list(_family(model, **model_kw).candidate_cuts())
    check_number(num_stages, name="num_stages", owner=owner, low=1, high=len(candidates) + 1, integer=True)
    measured = [score_cut(model, c, data, model_kw=model_kw, rule=rule, steps=steps, batch_size=batch_size,
                          lr=lr, seed=seed, val_size=val_size) for c in candidates]
    scores = [m[0] for m in measured]
    chosen = choose_cuts(scores, num_stages)
    name = model if isinstance(model, str) else model.__name__
    return CutSearch(
        model=name, num_stages=num_stages, candidates=tuple(candidates), scores=tuple(scores),
        last_exit_accuracy=tuple(m[1] for m in measured), local_exit_accuracy=tuple(m[2] for m in measured),
        cuts=tuple(candidates[i] for i in chosen), steps=steps,
    )
