"""T12. The data-processing inequality: on a Markov chain ``X -> T_1 -> T_2 -> ...``, ``I(X;T_k) >= I(X;T_{k+1})``;
checked for every estimator registered in ``locallearn.info.ESTIMATORS`` (theory/README.md, T12).

The network is deterministic with noise propagated: ``T_k = tanh(W_k T_{k-1} + b_k) + s Z_k``, ``T_0 = X``,
``X`` uniform over 256 points of [-1, 1]^2, each seen with 8 independent noise draws. The same layers
with noise added only at measurement, ``T_k = h_k(X) + s Z_k`` (the construction of the information
plane), are not a Markov chain, and there the inequality need not hold: reported beside.

Example:
    >>> first_rise([3.0, 2.0, 2.5, 1.0], tolerance=0.1)  # I(X;T_3) > I(X;T_2)
    3
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from locallearn.info import ESTIMATORS

from ._claim import CONDITIONAL, FAILS, HOLDS, Result

NOISE = 0.1

#: Hyper-parameters per estimator: X's distinct rows are the discrete input; KDE's kernel has the chain's noise.
OPTIONS = {"binning": {"discrete_x": True}, "kde": {"noise_var": NOISE**2}, "neural": {"steps": 300}}


def first_rise(values: Sequence[float], *, tolerance: float) -> int | None:
    """The first layer k (``values[k - 1]`` is I(X;T_k)) whose value exceeds the previous one by more than ``tolerance``."""
    return next((k + 1 for k in range(1, len(values)) if values[k] > values[k - 1] + tolerance), None)


def noisy_chain(*, gain: float, propagate: bool, points: int = 256, draws: int = 8, width: int = 3, layers: int = 4,
                seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``X`` (each point repeated ``draws`` times) and ``[T_1, ..., T_L]``; weights N(0, gain^2 / fan_in)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(points, 2, generator=g) * 2 - 1).repeat_interleave(draws, 0)
    h, out = x, []
    for _ in range(layers):
        w = torch.randn(width, h.shape[1], generator=g) * gain / h.shape[1] ** 0.5
        b = 0.1 * torch.randn(width, generator=g)
        clean = torch.tanh(h @ w.T + b)
        out.append(clean + NOISE * torch.randn(len(x), width, generator=g))
        h = out[-1] if propagate else clean  # the next layer sees the noisy T_k, or the clean h_k
    return x, out


def estimate(name: str, x: torch.Tensor, ts: list[torch.Tensor]) -> list[float]:
    """``I(X;T_k)`` for every k with the registered estimator ``name``."""
    values = []
    for t in ts:
        estimator = ESTIMATORS.create(name, **OPTIONS.get(name, {}))
        estimator.update(x.double().numpy(), t.double().numpy())
        values.append(round(float(estimator.compute()), 4))
    return values


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    names = [n for n in ESTIMATORS.names() if not (fast and n == "neural")]
    rows, held = [], {}
    for propagate in (True, False):
        for gain in (1.0, 3.0):
            x, ts = noisy_chain(gain=gain, propagate=propagate)
            for name in names:
                values = estimate(name, x, ts)
                rise = first_rise(values, tolerance=0.01 * abs(values[0]))
                if propagate:
                    held.setdefault(name, []).append(rise is None)
                rows.append({"chain": "Markov (noise propagated)" if propagate else "noise at measurement only",
                             "gain": gain, "estimator": name, "I(X;T_1..T_L)": values,
                             "first_rise_at_layer": rise})
    keeps = sorted(n for n, flags in held.items() if all(flags))
    breaks = [f"{r['estimator']} (gain {r['gain']:g}: T_{r['first_rise_at_layer'] - 1} -> T_{r['first_rise_at_layer']} "
              f"{r['I(X;T_1..T_L)'][r['first_rise_at_layer'] - 2]:.3f} -> {r['I(X;T_1..T_L)'][r['first_rise_at_layer'] - 1]:.3f})"
              for r in rows if r["chain"].startswith("Markov") and r["first_rise_at_layer"] is not None]
    verdict = HOLDS if not breaks else (FAILS if not keeps else CONDITIONAL)
    summary = (f"on the Markov chain the estimates never rise (tolerance 1 % of layer 1) for {', '.join(keeps) or 'none'}; "
               f"they rise for {', '.join(breaks) or 'none'}; with noise at measurement only, estimates rise in "
               f"{sum(r['first_rise_at_layer'] is not None for r in rows if r['chain'].startswith('noise'))} of "
               f"{sum(r['chain'].startswith('noise') for r in rows)} cases (no Markov chain, no inequality)")
    setting = (f"X uniform over 256 points of [-1, 1]^2 x 8 noise draws (2048 rows); 4 tanh layers of width 3, noise "
               f"s = {NOISE}; estimators with their defaults except {OPTIONS}; nats")
    return Result("T12", "Data-processing inequality per estimator", verdict, summary, rows, setting,
                  time.process_time() - start)
