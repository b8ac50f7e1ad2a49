"""Checks of T1-T5 (theory/README.md): the measurements come from theory/t0*_*.py, the formulas are written here."""

from __future__ import annotations

import pytest

from theory import t01_locality, t02_memory, t03_fa_equals_bp, t04_cascaded_cost, t05_kde_bounds


@pytest.mark.parametrize("num_stages", [2, 3])
def test_T1_local_gradients_separate_by_stage(num_stages):
    m = t01_locality.measure(num_stages=num_stages)
    assert m["max_difference"] == 0.0  # (a): the sum's gradient is each stage's own, to the bit
    assert m["later_gradients_reaching_earlier_stages"] == 0  # (c)


@pytest.mark.parametrize("layers_per_stage", [1, 4])
@pytest.mark.parametrize("num_stages", [1, 2, 4, 8])
def test_T2_local_rule_keeps_one_stage_of_activations(num_stages, layers_per_stage):
    m, L = layers_per_stage, num_stages
    # activations of width 256 dominate; the heads' softmax outputs (64 x 10) add under 2 %
    assert t02_memory.peak_ratio(num_stages=L, layers_per_stage=m) == pytest.approx((m + 1) / (m * L + 1), rel=0.02)


def test_T3_feedback_alignment_with_B_equal_W_is_backprop():
    m = t03_fa_equals_bp.measure()
    assert m["input_grad_B_equal_W"] <= 1e-12 and m["weight_grad_B_equal_W"] <= 1e-12
    assert m["weight_grad_random_B"] <= 1e-12  # the weight gradient never depends on B
    assert m["input_grad_random_B"] > 1e-3


def test_T4_runner_flops_equal_the_cascaded_cost_formula():
    m = t04_cascaded_cost.measure()
    assert len(m["exits_used"]) > 1  # the check means something only if samples leave at several exits
    n, exits, b, c = len(m["exit"]), m["exit"].tolist(), m["blocks"], m["heads"]
    formula = sum(exits.count(k) / n * sum(b[j] + c[j] for j in range(k + 1)) for k in range(len(b)))
    assert m["runner_mean_flops"] == pytest.approx(formula, rel=1e-9)


@pytest.mark.parametrize("d, anchor", [(1.0, 0.1114), (2.0, 0.3368)])
def test_T5_kde_bounds_bracket_the_true_mi(d, anchor):
    true = t05_kde_bounds.true_mi_two_centres(d)
    assert abs(true - anchor) < 5e-4  # our quadrature reproduces ANCHORS item 7
    lower, upper = t05_kde_bounds.bounds(d)
    assert lower <= true <= upper


@pytest.mark.parametrize("check", [t01_locality.check, t03_fa_equals_bp.check, t04_cascaded_cost.check, t05_kde_bounds.check])
def test_T1_T3_T4_T5_verdicts_hold(check):
    assert check(fast=True).verdict == "holds"
