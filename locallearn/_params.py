"""Hyper-parameter validation with one message shape, and read-back of a component's config.

Example:
    >>> check_number(0.5, name="beta", owner="HSICBottleneck", low=0.0)
    0.5
    >>> check_number(-1, name="beta", owner="HSICBottleneck", low=0.0)
    Traceback (most recent call last):
    ...
    ValueError: The 'beta' parameter of HSICBottleneck must be a float >= 0.0. Got -1 instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Iterable


def check_number(
    value: Any,
    *,
    name: str,
    owner: str,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_inclusive: bool = True,
    finite: bool = True,
) -> Any:
    """Return ``value`` if it is a number within bounds (and finite, unless ``finite=False``: NaN and
    infinity are refused), else raise the standard message."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    infinite = ok and finite and not math.isfinite(value)
    kind = "an int" if integer else ("a finite float" if infinite else "a float")
    bounds = []
    if low is not None:
        bounds.append(f"{'>=' if low_inclusive else '>'} {low}")
    if high is not None:
        bounds.append(f"<= {high}")
    wanted = kind + (" " + " and ".join(bounds) if bounds else "")
    ok = ok and not infinite
    if integer:
        ok = ok and float(value).is_integer()
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        raise ValueError(f"The {name!r} parameter of {owner} must be {wanted}. Got {value!r} instead.")
    return int(value) if integer else value


def check_choice(value: Any, *, name: str, owner: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise the standard message."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"The {name!r} parameter of {owner} must be one of {listed}. Got {value!r} instead.")
    return value


def get_params(obj: Any) -> dict[str, Any]:
    """The keyword-only constructor hyper-parameters of ``obj``, read back from its attributes."""
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    signature = inspect.signature(type(obj).__init__)
    return {
        p.name: getattr(obj, p.name)
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and hasattr(obj, p.name)
    }
