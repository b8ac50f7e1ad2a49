"""Summaries over seeds: mean ± sample standard deviation with n, the 95 % interval of the mean from the
t-distribution, and a paired t-test between two configurations trained on the same seeds.

A single seed has no spread: its summary prints no ± and has no interval.

Example:
    >>> ms = mean_sd([0.80, 0.82, 0.84])
    >>> ms.n, round(ms.mean, 4), round(ms.sd, 4), [round(v, 4) for v in ms.ci95()]
    (3, 0.82, 0.02, [0.7703, 0.8697])
    >>> format_mean_sd(ms, scale=100, with_n=True), format_ci(ms, scale=100, digits=1)
    ('82.00 ± 2.00 (n=3)', '[77.0, 87.0]')
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping

from scipy import stats as _scipy_stats


class MeanSD(tuple):
    """``(mean, sd)`` of ``n`` values, unpacking as the pair it replaces (``sd`` is 0 for one value), with ``n``."""

    n: int

    def __new__(cls, mean: float, sd: float, n: int) -> "MeanSD":
        self = super().__new__(cls, (mean, sd))
        self.n = n
        return self

    def __getnewargs__(self) -> tuple[float, float, int]:  # copy and pickle keep n
        return (self[0], self[1], self.n)

    @property
    def mean(self) -> float:
        return self[0]

    @property
    def sd(self) -> float:
        return self[1]

    def ci95(self) -> tuple[float, float] | None:
        """The 95 % confidence interval of the mean (t-distribution, n - 1 degrees of freedom); None for one value."""
        if self.n < 2:
            return None
        half = float(_scipy_stats.t.ppf(0.975, self.n - 1)) * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half


def mean_sd(values: Iterable[float | None]) -> MeanSD | None:
    """Mean and sample standard deviation of the values that are not None (None when there is none)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    return MeanSD(statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else 0.0, len(kept))


def _n(ms: Any) -> int | None:
    return getattr(ms, "n", None)  # a plain (mean, sd) pair does not say


def format_mean_sd(ms: Any, *, scale: float = 1.0, digits: int = 2, with_n: bool = False) -> str:
    """``"87.12 ± 0.31"`` (``"87.12"`` for one value, ``"–"`` for none); ``with_n`` appends ``" (n=3)"``."""
    if ms is None:
        return "–"
    text = f"{ms[0] * scale:.{digits}f}"
    if _n(ms) != 1:
        text += f" ± {ms[1] * scale:.{digits}f}"
    return text + (f" (n={ms.n})" if with_n and _n(ms) is not None else "")


def format_ci(ms: Any, *, scale: float = 1.0, digits: int = 2) -> str:
    """``"[86.35, 87.89]"``, the 95 % interval of the mean; ``"–"`` for one value or none."""
    interval = ms.ci95() if isinstance(ms, MeanSD) else None
    return "–" if interval is None else f"[{interval[0] * scale:.{digits}f}, {interval[1] * scale:.{digits}f}]"


def paired_test(a: Mapping[Any, float], b: Mapping[Any, float]) -> dict[str, Any] | None:
    """Paired t-test of ``a`` against ``b`` (each: seed -> value) over the seeds both have
    (``scipy.stats.ttest_rel``): the mean difference a - b, its 95 % t interval, t, the two-sided p and n.
    None with fewer than two common seeds.

    Example:
        >>> t = paired_test({0: 0.90, 1: 0.91, 2: 0.93}, {0: 0.88, 1: 0.90, 2: 0.90})
        >>> t["n"], round(t["mean_difference"], 4), round(t["p"], 3)
        (3, 0.02, 0.074)
    """
    seeds = sorted(set(a) & set(b), key=str)
    if len(seeds) < 2:
        return None
    x, y = [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]
    diff = mean_sd([p - q for p, q in zip(x, y)])
    if diff.sd == 0.0:  # every seed differs by the same amount: t is infinite (or undefined for no difference)
        t, p = (math.inf if diff.mean else math.nan), (0.0 if diff.mean else 1.0)
    else:
        result = _scipy_stats.ttest_rel(x, y)
        t, p = float(result.statistic), float(result.pvalue)
    return {"mean_difference": diff.mean, "ci95": list(diff.ci95()), "t": t, "p": p, "n": len(seeds), "seeds": seeds}
