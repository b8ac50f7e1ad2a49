"""T5. The KDE pairwise-distance bounds bracket the true mutual information (Kolchinsky & Tracey;
theory/README.md, T5), the true value computed by quadrature independently of the estimator.

Example:
    >>> round(true_mi_two_centres(1.0), 4)
    0.1114
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import integrate

from locallearn.info.kde import kde_mi

from ._claim import FAILS, HOLDS, Result


def true_mi_two_centres(d: float, s2: float = 1.0) -> float:
    """I(X;T) for X uniform on {0, d}, T = X + N(0, s2): h(T) - h(T|X) by quadrature."""
    s = math.sqrt(s2)

    def density(t: float) -> float:
        return 0.5 * (math.exp(-t * t / (2 * s2)) + math.exp(-(t - d) ** 2 / (2 * s2))) / math.sqrt(2 * math.pi * s2)

    def integrand(t: float) -> float:
        p = density(t)
        return -p * math.log(p) if p > 0 else 0.0

    h_t, _ = integrate.quad(integrand, -12 * s, d + 12 * s, limit=200)
    return h_t - 0.5 * math.log(2 * math.pi * math.e * s2)


def bounds(d: float) -> tuple[float, float]:
    """``locallearn``'s lower and upper KDE bounds for the two centres at distance ``d``, noise variance 1."""
    centres = np.array([[0.0], [d]])
    return (kde_mi([0, 1], centres, noise_var=1.0, bound="lower"), kde_mi([0, 1], centres, noise_var=1.0, bound="upper"))


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    rows = []
    for d in (0.5, 1.0, 2.0, 4.0):
        lower, upper = bounds(d)
        true = true_mi_two_centres(d)
        rows.append({"d": d, "lower": round(lower, 4), "true (quadrature)": round(true, 4), "upper": round(upper, 4),
                     "bracketed": lower <= true <= upper})
    held = all(r["bracketed"] for r in rows)
    return Result("T5", "KDE bounds bracket the true MI", HOLDS if held else FAILS,
                  f"lower <= true <= upper at all {len(rows)} distances (ANCHORS item 7 at d = 1, 2)", rows,
                  "two centres at distance d on a line, noise variance 1, nats", time.process_time() - start)
