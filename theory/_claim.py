"""What every check returns: a claim's verdict and the numbers behind it.

Example:
    >>> r = Result("T0", "an example", HOLDS, "1 + 1 = 2 exactly", [{"lhs": 2, "rhs": 2}])
    >>> r.verdict
    'holds'
"""

from __future__ import annotations

import dataclasses
from typing import Any

HOLDS = "holds"
CONDITIONAL = "holds under stated conditions"
FAILS = "does not hold here"
VERDICTS = (HOLDS, CONDITIONAL, FAILS)


@dataclasses.dataclass
class Result:
    """One claim's verdict, a sentence saying why, and the rows of numbers it rests on."""

    claim: str
    title: str
    verdict: str
    summary: str
    table: list[dict[str, Any]]
    setting: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"Result.verdict must be one of {VERDICTS}. Got {self.verdict!r} instead.")


def verdict_from(flags: list[bool]) -> str:
    """``holds`` if every case holds, ``does not hold here`` if none does, else ``holds under stated conditions``.

    Example:
        >>> verdict_from([True, False])
        'holds under stated conditions'
    """
    if not flags:
        raise ValueError("verdict_from needs at least one case.")
    return HOLDS if all(flags) else FAILS if not any(flags) else CONDITIONAL
