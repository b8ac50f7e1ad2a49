"""The accuracy-vs-FLOPs curve of the exits (locallearn.exits.curve): its area against closed forms, its
FLOPs against a toy net counted by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from locallearn.exits import ExitCurve, ExitLogits, common_range, curve_area, stage_costs, threshold_curve
from locallearn.exits.policies.ensemble import GeometricEnsemblePolicy


def test_the_area_of_a_straight_line_is_its_value_at_the_middle_of_the_range():
    a, b = 0.3, 0.1  # acc(c) = a + b c
    cost = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert curve_area(cost, [a + b * c for c in cost], 0.5, 3.5) == pytest.approx(a + b * 2.0, abs=1e-12)


def test_the_area_of_a_broken_line_between_points_and_inside_segments():
    cost, acc = [0.0, 1.0, 2.0], [0.0, 1.0, 1.0]
    assert curve_area(cost, acc, 0.0, 2.0) == pytest.approx((0.5 + 1.0) / 2)
    # integral_0.5^1 c dc + integral_1^1.5 1 dc = 0.375 + 0.5, over a range of width 1
    assert curve_area(cost, acc, 0.5, 1.5) == pytest.approx(0.875)


def test_the_area_of_a_densely_sampled_parabola_is_a_third():
    cost = torch.linspace(0, 1, 1001).tolist()
    assert curve_area(cost, [c * c for c in cost], 0.0, 1.0) == pytest.approx(1 / 3, abs=1e-6)  # trapezoid error h^2 / 6


def test_points_of_equal_cost_are_averaged_and_the_order_does_not_matter():
    assert curve_area([2.0, 0.0, 2.0], [0.2, 0.0, 1.0], 0.0, 2.0) == pytest.approx((0.0 + 0.6) / 2)


def test_a_range_outside_the_curve_or_empty_is_refused():
    with pytest.raises(ValueError, match="leaves the curve's costs"):
        curve_area([1.0, 2.0], [0.5, 0.6], 0.5, 2.0)
    with pytest.raises(ValueError, match="low < high"):
        curve_area([1.0, 2.0], [0.5, 0.6], 1.5, 1.5)
    with pytest.raises(ValueError, match="share no range"):
        common_range([ExitCurve((1.0, 2.0), (0.1, 0.2), (0.0, math.inf)), ExitCurve((3.0, 4.0), (0.1, 0.2), (0.0, math.inf))])


def _toy_costs():
    blocks = [nn.Conv2d(1, 2, 3), nn.Sequential(nn.Flatten(), nn.Linear(18, 4))]
    heads = [nn.Sequential(nn.Flatten(), nn.Linear(18, 3)), nn.Linear(4, 3)]
    return stage_costs(blocks, heads, (1, 5, 5))


def test_the_toy_nets_flops_counted_by_hand():
    costs = _toy_costs()
    # conv 1->2, 3x3 on 5x5: 2 * (1 * 3 * 3) multiply-adds per output * (2 * 3 * 3) outputs; linear: 2 * in * out
    assert costs.blocks == (2 * 9 * 18, 2 * 18 * 4)
    assert costs.heads == (2 * 18 * 3, 2 * 4 * 3)


def test_the_curve_runs_from_every_sample_at_the_first_exit_to_none_with_the_hand_counted_flops():
    costs = _toy_costs()
    c0, c1 = 324 + 108, 324 + 108 + 144 + 24  # leave at exit 0; run everything (every head included)
    big = 6.0
    # 4 samples, label 0; exit 0 is sure and right on samples 0-1, unsure and wrong on 2-3; exit 1 right on all
    first = torch.tensor([[big, 0, 0], [big, 0, 0], [0, 0.1, 0], [0, 0.1, 0]])
    last = torch.tensor([[big, 0, 0]] * 4)
    data = ExitLogits(torch.stack([first, last]), torch.zeros(4, dtype=torch.long), "test")
    curve = threshold_curve(data, "max-prob", costs, n_points=5)
    assert curve.flops[0] == pytest.approx(c0) and curve.accuracy[0] == pytest.approx(0.5)
    assert curve.flops[-1] == pytest.approx(c1) and curve.accuracy[-1] == 1.0 and curve.thresholds[-1] == math.inf
    middle = [i for i, f in enumerate(curve.flops) if abs(f - (c0 + c1) / 2) < 1e-9]  # the two sure samples leave early
    assert middle and all(curve.accuracy[i] == 1.0 for i in middle)
    assert list(curve.flops) == sorted(curve.flops)
    low, high = common_range([curve])
    assert (low, high) == (pytest.approx(c0), pytest.approx(c1))
    # acc 0.5 at c0, 1.0 from the middle on: area = (0.75 * half + 1.0 * half) / range
    assert curve_area(curve.flops, curve.accuracy, low, high) == pytest.approx(0.875)


def test_a_learnable_policy_must_be_fitted_first():
    data = ExitLogits(torch.randn(2, 8, 3), torch.zeros(8, dtype=torch.long), "test")
    with pytest.raises(ValueError, match="fitted GeometricEnsemblePolicy"):
        threshold_curve(data, GeometricEnsemblePolicy(), _toy_costs())
