"""T12. The data-processing inequality: on a Markov chain ``X -> T_1 -> T_2 -> ...``, ``I(X;T_k) >= I(X;T_{k+1})``;
checked for every estimator registered in ``locallearn.info.ESTIMATORS``, each with its own verdict: an estimator
whose estimate rises along the chain "does not hold here" (theory/README.md, T12).

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

from ._claim import FAILS, HOLDS, Result

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


def verdict_for(markov_rises: Sequence[int | None]) -> str:
    """One estimator's verdict from its first rise on each Markov chain checked: ``holds`` if it never rises.

    Example:
        >>> verdict_for([None, None]), verdict_for([None, 4])
        ('holds', 'does not hold here')
    """
    if not markov_rises:
        raise ValueError("verdict_for needs at least one Markov chain's result.")
    return HOLDS if all(r is None for r in markov_rises) else FAILS


def check_estimator(name: str, chains: dict[tuple[bool, float], tuple[torch.Tensor, list[torch.Tensor]]]) -> Result:
    """The inequality as estimator ``name`` sees it on every chain: its own verdict."""
    start = time.process_time()
    rows = []
    for (propagate, gain), (x, ts) in chains.items():
        values = estimate(name, x, ts)
        rows.append({"chain": "Markov (noise propagated)" if propagate else "noise at measurement only", "gain": gain,
                     "I(X;T_1..T_L)": values, "first_rise_at_layer": first_rise(values, tolerance=0.01 * abs(values[0]))})
    markov = [r for r in rows if r["chain"].startswith("Markov")]
    verdict = verdict_for([r["first_rise_at_layer"] for r in markov])
    rises = [f"gain {r['gain']:g}: T_{r['first_rise_at_layer'] - 1} -> T_{r['first_rise_at_layer']} "
             f"{r['I(X;T_1..T_L)'][r['first_rise_at_layer'] - 2]:.3f} -> {r['I(X;T_1..T_L)'][r['first_rise_at_layer'] - 1]:.3f}"
             for r in markov if r["first_rise_at_layer"] is not None]
    measured_only = [r for r in rows if not r["chain"].startswith("Markov")]
    gains = ", ".join(f"{r['gain']:g}" for r in markov)
    summary = ((f"{name}'s estimate rises along the Markov chain ({'; '.join(rises)}), which the true I(X;T_k) never does"
                if rises else f"{name}'s estimate never rises along the Markov chain (tolerance 1 % of layer 1), gains {gains}")
               + f"; with noise at measurement only (no Markov chain) it rises in "
               f"{sum(r['first_rise_at_layer'] is not None for r in measured_only)} of {len(measured_only)} cases")
    setting = (f"X uniform over 256 points of [-1, 1]^2 x 8 noise draws (2048 rows); 4 tanh layers of width 3, noise "
               f"s = {NOISE}; {name} with its defaults{' except ' + str(OPTIONS[name]) if name in OPTIONS else ''}")
    return Result("T12", f"Data-processing inequality as {name} sees it", verdict, summary, rows, setting,
                  time.process_time() - start)


def check(*, fast: bool = False) -> list[Result]:
    """One result per registered estimator (``fast`` leaves out the slow neural one)."""
    names = [n for n in ESTIMATORS.names() if not (fast and n == "neural")]
    chains = {(propagate, gain): noisy_chain(gain=gain, propagate=propagate)
              for propagate in (True, False) for gain in (1.0, 3.0)}
    return [check_estimator(name, chains) for name in names]
