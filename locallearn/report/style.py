"""One look for every figure of a comparison: a fixed colour per rule, a line style per schedule, and a marker
per variant (the rows that share a rule and a schedule but differ in another setting, such as the lr).

Colours follow the rule registry's order (the end-to-end reference ``e2e`` is always black), so a rule
keeps its colour in every figure and every comparison of one installation; a rule that is not
registered is added after the registered ones. Each colour is distinct however many rules there are:
ten strong colours, then ten light ones, then evenly spaced hues (never a cycle that repeats).

Example:
    >>> style = style_for(["local", "e2e", "predsim"], ["simultaneous", "sequential"])
    >>> style.colour("e2e"), style.linestyle("sequential")
    ('black', '--')
    >>> style.colour("local") != style.colour("predsim")
    True
    >>> style_for(["local"], []).colour("local") == style.colour("local")   # the same in another comparison
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

REFERENCE_COLOURS = {"e2e": "black"}
SCHEDULE_LINESTYLES: dict[str, Any] = {
    "simultaneous": "-", "sequential": "--", "decoupled": ":", "pipeline": "-.", "freezeout": (0, (5, 1, 1, 1, 1, 1)),
}
MARKERS = "osD^vP*Xph<>"


def palette(n: int) -> list[tuple[float, ...]]:
    """``n`` distinct colours: tab20's ten strong colours, then its ten light ones, then evenly spaced hues."""
    from matplotlib import colormaps

    tab20 = [colormaps["tab20"](i) for i in range(20)]
    colours = tab20[0::2] + tab20[1::2]
    if n <= len(colours):
        return colours[:n]
    return [colormaps["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def _dashes(i: int) -> tuple[int, tuple[float, ...]]:
    """The i-th line style after the named ones: dash patterns that never repeat."""
    return (0, (1 + 2 * (i % 4), 1 + i // 4, 1, 1 + i // 4))


@dataclass(frozen=True)
class Style:
    """Colours by rule, line styles by schedule; ``line(row, variant)`` gives matplotlib keyword arguments."""

    colours: dict[str, Any]
    linestyles: dict[str, Any]
    markers: str = field(default=MARKERS)

    def colour(self, rule: str) -> Any:
        if rule not in self.colours:
            raise ValueError(f"The style has no colour for rule {rule!r}; build it with style_for over every rule shown.")
        return self.colours[rule]

    def linestyle(self, schedule: str) -> Any:
        if schedule not in self.linestyles:
            raise ValueError(f"The style has no line style for schedule {schedule!r}; build it with style_for over every schedule shown.")
        return self.linestyles[schedule]

    def marker(self, variant: int) -> str:
        return self.markers[variant % len(self.markers)]

    def line(self, row: dict[str, Any], variant: int = 0) -> dict[str, Any]:
        """``color``, ``linestyle`` and ``marker`` for a row with ``rule`` and ``schedule``."""
        return {"color": self.colour(row["rule"]), "linestyle": self.linestyle(row["schedule"]), "marker": self.marker(variant)}


def style_for(rules: Iterable[str], schedules: Iterable[str]) -> Style:
    """The style of a comparison showing ``rules`` under ``schedules``."""
    from locallearn.rules import RULES

    wanted = set(rules)
    ordered = [r for r in RULES.names() if r not in REFERENCE_COLOURS]
    ordered += sorted(wanted - set(ordered) - set(REFERENCE_COLOURS))
    colours = dict(zip(ordered, palette(len(ordered))))
    colours.update({r: c for r, c in REFERENCE_COLOURS.items()})
    linestyles = dict(SCHEDULE_LINESTYLES)
    for i, schedule in enumerate(sorted(set(schedules) - set(linestyles))):
        linestyles[schedule] = _dashes(i)
    return Style(colours, linestyles)


def style_for_rows(rows: Sequence[dict[str, Any]]) -> Style:
    """The style of rows (records or summary rows) that carry ``rule`` and ``schedule``."""
    return style_for([r["rule"] for r in rows], [r["schedule"] for r in rows])


def variants(rows: Sequence[dict[str, Any]], label: Any) -> list[int]:
    """For each row, its index among the rows of the same rule and schedule with other labels (its marker).

    Example:
        >>> rows = [{"rule": "local", "schedule": "simultaneous", "label": f"lr={lr}"} for lr in (0.1, 0.01)]
        >>> variants(rows + rows[:1], lambda r: r["label"])
        [0, 1, 0]
    """
    seen: dict[tuple[str, str], list[Any]] = {}
    out = []
    for row in rows:
        labels = seen.setdefault((row["rule"], row["schedule"]), [])
        name = label(row)
        if name not in labels:
            labels.append(name)
        out.append(labels.index(name))
    return out
