"""Gathering every exit's value over one training step, for a loss that couples the exits (joint's L2W
weights, joint-cost's penalty): the stages of a step arrive one by one, the coupled term is added at the last."""

from __future__ import annotations

from typing import Any

from locallearn.rules.base import StageOutput


class StepExits:
    """One value per exit, gathered over the stages of one step; ``add`` returns them all at the last exit.

    Example:
        >>> from types import SimpleNamespace as Out
        >>> gather = StepExits("joint-cost", "its penalty couples them")
        >>> gather.add(Out(index=0, is_last=False), "a") is None, gather.add(Out(index=1, is_last=True), "b")
        (True, {0: 'a', 1: 'b'})
        >>> gather.add(Out(index=1, is_last=True), "b")
        Traceback (most recent call last):
        ...
        ValueError: joint-cost needs every exit's logits in the same step (its penalty couples them). Got exits [1] of 2; use a schedule that trains every stage each step.
    """

    def __init__(self, owner: str, why: str) -> None:
        self.owner, self.why = owner, why
        self._seen: dict[int, Any] = {}

    def add(self, out: StageOutput, value: Any, *, complete: bool = True) -> dict[int, Any] | None:
        """Record ``value`` for exit ``out.index``; at the last exit return every exit's value (refused, with
        what to do instead, if an exit of this step is missing or ``complete`` is False), else None."""
        if out.index == 0 or out.index in self._seen:  # a new step began
            self._seen = {}
        self._seen[out.index] = value
        if not out.is_last:
            return None
        seen, self._seen = self._seen, {}
        if sorted(seen) != list(range(out.index + 1)) or not complete:
            raise ValueError(
                f"{self.owner} needs every exit's logits in the same step ({self.why}). Got exits {sorted(seen)} of "
                f"{out.index + 1}; use a schedule that trains every stage each step."
            )
        return seen
