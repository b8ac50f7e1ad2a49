"""Learning to Weight (L2W; Han, Pu, Lai, Wang, Song, Cao, Huang, Deng & Huang, ECCV 2022; authors' code
LeapLabTHU/L2W-DEN, ``tools/main_cifar_DDP.py``, ``models/weight_predict.py``): per-sample, per-exit loss
weights from a meta-network, for deep supervision (``joint:weighting=l2w``).

Weights. With ``L[n, k]`` the cross-entropy of sample n at exit k, a meta-network ``m_phi`` (an MLP
``K -> hidden -> K`` with ReLU and a tanh output, the authors' ``MLP_tanh``) maps each sample's row of
losses to ``K`` numbers, and

    W = 1 + epsilon * (m_phi(L) - mean(m_phi(L)))          (the mean over the whole batch: "mat")

weighs the training loss ``sum_k mean_n W[n, k] L[n, k]``.

Meta step (the authors' meta-learning step, every ``meta_interval`` steps). The batch is cut in two
halves A and B. One virtual SGD step on A, ``theta' = theta - lr * grad_theta sum_k mean_n W_A L_A``,
keeping the graph to ``phi``; then the meta objective mimics test-time exiting on B with ``theta'``:
exit j takes, among the samples not taken yet, the ``floor(n * p_j)`` most confident (max softmax),
``p_j ∝ q^j`` (``q = exit_decay``), the last exit takes the rest, and the meta loss is the sum over exits
of the mean cross-entropy of the samples each took. ``phi`` takes one Adam step on it; then the same
with A and B swapped. The network's weights then learn from the weighted loss, ``W`` computed by the
updated meta-network (no gradient reaches it from there).

Defaults are the authors' ImageNet command in their README (hidden 500, one hidden layer, meta learning
rate 1e-4 with weight decay 1e-4, epsilon 0.3, ``--target_p_index 15``: q = 15/20, losses as the
meta-network's input, the "mat" centring) except ``meta_interval=1`` (their code's default; the README's
100 suits 100-epoch runs of 4096-sample batches). Departures: the virtual step is plain SGD with
``virtual_lr`` (the authors replay the optimiser's learning rate, momentum and weight decay, which a rule
does not see); the network takes one optimiser step on the whole batch with the weights after both meta
updates (the authors take one per half, each after its own meta update); the meta learning rate is
constant (theirs follows a cosine schedule); only losses as input and the "mat" centring are offered;
the meta-network lives in the rule (it is not part of the net, nor of its checkpoints).

Example:
    >>> import torch
    >>> l2w = L2W(hidden=8)
    >>> w = l2w.weights(torch.rand(5, 3))
    >>> w.shape, round(float(w.mean()), 6)
    (torch.Size([5, 3]), 1.0)
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from locallearn._params import check_number, get_params

Forward = Callable[[Mapping[str, torch.Tensor], torch.Tensor], Sequence[torch.Tensor]]


class MetaWeightNet(nn.Module):
    """The authors' ``MLP_tanh``: ``K -> hidden`` (ReLU), ``layers - 1`` more hidden layers, ``-> K``, tanh."""

    def __init__(self, n_exits: int, *, hidden: int, layers: int) -> None:
        super().__init__()
        widths = [n_exits] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            body += [nn.Linear(a, b), nn.ReLU()]
        self.layers = nn.Sequential(*body, nn.Linear(hidden, n_exits), nn.Tanh())

    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        return self.layers(losses)


def per_sample_losses(logits: Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """``[N, K]``: the cross-entropy of every sample at every exit."""
    return torch.stack([F.cross_entropy(z, y, reduction="none") for z in logits], 1)


def sample_weights(meta_net: nn.Module, losses: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``W = 1 + epsilon * (m(L) - mean m(L))`` for ``[N, K]`` losses (the meta-network sees them detached)."""
    out = meta_net(losses.detach())
    return 1 + epsilon * (out - out.mean())


def weighted_loss(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_k mean_n W[n, k] L[n, k]``, the authors' ``torch.sum(torch.mean(weight * losses, 0))``."""
    return (weights * losses).mean(0).sum()


def exit_fractions(n_exits: int, decay: float) -> torch.Tensor:
    """``p_j ∝ decay ** j`` for ``j = 1..K``: the share of samples exit j takes in the meta objective."""
    p = decay ** torch.arange(1, n_exits + 1, dtype=torch.float64)
    return p / p.sum()


def exiting_selection(logits: Sequence[torch.Tensor], fractions: torch.Tensor) -> list[torch.Tensor]:
    """The rows each exit takes, as at test time: exit j the ``floor(n p_j)`` most confident rows not taken
    before it (max softmax probability), the last exit every row left."""
    n = logits[0].shape[0]
    taken = torch.zeros(n, dtype=torch.bool)
    chosen = []
    for j, z in enumerate(logits):
        order = torch.softmax(z.detach(), -1).amax(-1).argsort(descending=True, stable=True)
        order = order[~taken[order]]
        rows = order if j == len(logits) - 1 else order[: math.floor(n * float(fractions[j]))]
        taken[rows] = True
        chosen.append(rows)
    return chosen


def exiting_meta_loss(logits: Sequence[torch.Tensor], y: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Sum over exits of the mean cross-entropy of the rows each takes (:func:`exiting_selection`)."""
    parts = [F.cross_entropy(z[rows], y[rows]) for z, rows in zip(logits, exiting_selection(logits, fractions)) if len(rows)]
    return torch.stack(parts).sum()


class L2W:
    """The meta-network, its optimiser and the meta step of Learning to Weight (see the module docstring).

    Source: Han, Pu, Lai, Wang, Song, Cao, Huang, Deng & Huang, ECCV 2022 (Learning to Weight Samples for Dynamic Early-exiting Networks; LeapLabTHU/L2W-DEN).
    """

    source = "Han, Pu, Lai, Wang, Song, Cao, Huang, Deng & Huang, ECCV 2022 (Learning to Weight Samples for Dynamic Early-exiting Networks; LeapLabTHU/L2W-DEN)"

    def __init__(
        self, *, hidden: int = 500, layers: int = 1, meta_lr: float = 1e-4, meta_weight_decay: float = 1e-4,
        epsilon: float = 0.3, exit_decay: float = 0.75, meta_interval: int = 1, virtual_lr: float = 0.1, seed: int = 0,
    ) -> None:
        owner = "L2W"
        self.hidden = check_number(hidden, name="hidden", owner=owner, low=1, integer=True)
        self.layers = check_number(layers, name="layers", owner=owner, low=1, integer=True)
        self.meta_lr = check_number(meta_lr, name="meta_lr", owner=owner, low=0.0, low_inclusive=False)
        self.meta_weight_decay = check_number(meta_weight_decay, name="meta_weight_decay", owner=owner, low=0.0)
        self.epsilon = check_number(epsilon, name="epsilon", owner=owner, low=0.0)
        self.exit_decay = check_number(exit_decay, name="exit_decay", owner=owner, low=0.0, low_inclusive=False)
        self.meta_interval = check_number(meta_interval, name="meta_interval", owner=owner, low=1, integer=True)
        self.virtual_lr = check_number(virtual_lr, name="virtual_lr", owner=owner, low=0.0)
        self.seed = check_number(seed, name="seed", owner=owner, integer=True)
        self.meta_net: MetaWeightNet | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.steps = 0

    def get_params(self) -> dict:
        return get_params(self)

    def __repr__(self) -> str:
        return "L2W(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _meta(self, n_exits: int) -> MetaWeightNet:
        if self.meta_net is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.meta_net = MetaWeightNet(n_exits, hidden=self.hidden, layers=self.layers)
            self.optimizer = torch.optim.Adam(self.meta_net.parameters(), lr=self.meta_lr, weight_decay=self.meta_weight_decay)
        if self.meta_net.layers[0].in_features != n_exits:
            raise ValueError(f"This L2W meta-network was built for {self.meta_net.layers[0].in_features} exits; the network has {n_exits}.")
        return self.meta_net

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """``[N, K]`` sample weights for ``[N, K]`` losses, without a gradient to the meta-network."""
        with torch.no_grad():
            return sample_weights(self._meta(losses.shape[1]), losses, self.epsilon)

    def meta_loss(
        self, forward: Forward, params: Mapping[str, torch.Tensor], x_train: torch.Tensor, y_train: torch.Tensor,
        x_meta: torch.Tensor, y_meta: torch.Tensor,
    ) -> torch.Tensor:
        """The meta objective after one virtual SGD step on ``(x_train, y_train)``: differentiable in the
        meta-network's parameters (``params`` are the network's trainable tensors, leaves that require grad;
        ``forward(params, x)`` gives every exit's logits)."""
        losses = per_sample_losses(forward(params, x_train), y_train)
        weights = sample_weights(self._meta(losses.shape[1]), losses, self.epsilon)
        names = list(params)
        grads = torch.autograd.grad(weighted_loss(losses, weights), [params[n] for n in names], create_graph=True)
        virtual = {n: params[n] - self.virtual_lr * g for n, g in zip(names, grads)}
        logits = forward(virtual, x_meta)
        return exiting_meta_loss(logits, y_meta, exit_fractions(len(logits), self.exit_decay))

    def meta_update(self, forward: Forward, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> None:
        """Every ``meta_interval``-th call: the two meta steps on the batch's halves (A -> B, then B -> A)."""
        self.steps += 1
        if (self.steps - 1) % self.meta_interval or len(x) < 2:
            return
        half = len(x) // 2
        parts = ((x[:half], y[:half]), (x[half:], y[half:]))
        for (xa, ya), (xb, yb) in (parts, parts[::-1]):
            loss = self.meta_loss(forward, params, xa, ya, xb, yb)
            self.optimizer.zero_grad()
            loss.backward(inputs=list(self.meta_net.parameters()))
            self.optimizer.step()
