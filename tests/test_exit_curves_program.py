"""The exit_curves program's areas: every curve of a report over the one FLOPs range all of them cover."""

from __future__ import annotations

import math

import pytest

from locallearn.bench.programs.exit_curves import areas


def _record(method: str, seed: int, curves: dict[str, tuple[list[float], list[float]]]) -> dict:
    return {"method": method, "seed": seed, "curves": {
        policy: {"flops": f, "accuracy": a, "thresholds": [0.0] * (len(f) - 1) + [math.inf]} for policy, (f, a) in curves.items()}}


def test_areas_take_the_range_every_curve_covers_and_label_by_method_and_policy():
    records = [
        _record("joint", 0, {"max-prob": ([1.0, 3.0], [0.5, 0.9])}),  # acc = 0.3 + 0.2 c
        _record("ztw", 0, {"ztw-ensemble": ([1.0, 2.0, 3.5], [0.6, 0.8, 0.8]), "max-prob": ([1.0, 3.5], [0.6, 0.6])}),
    ]
    (low, high), area = areas(records)
    assert (low, high) == (1.0, 3.0)
    assert area["joint max-prob"] == {0: pytest.approx(0.7)}  # the line's value at the middle, c = 2
    assert area["ztw ztw-ensemble"] == {0: pytest.approx((0.7 + 0.8) / 2)}  # rises over [1, 2], flat over [2, 3]
    assert area["ztw max-prob"] == {0: pytest.approx(0.6)}
