"""Fast checks of T6-T9 (theory/README.md): layer-wise and deeply supervised training. Fixed seeds; margins wide."""

from __future__ import annotations

import pytest

import locallearn as ll
from theory import t06_error_propagation, t07_linear_separability, t08_non_worsening, t09_deep_supervision
from theory._data import spirals_dataset


def test_T6_final_loss_within_shallow_optimum_plus_sum_of_gaps():
    rows = [t06_error_propagation.run_budget(budget=b, reference_steps=400, num_stages=3) for b in (25, 100)]
    for row in rows:
        assert all(g >= 0 for g in row["gaps"])
        bound = row["shallow_optimum"] + sum(row["gaps"])  # R_1* + sum_k eps_k
        assert row["final_loss"] <= bound + 1e-3
    assert rows[1]["final_loss"] < rows[0]["final_loss"] - 0.1  # smaller gaps, smaller final loss
    assert rows[1]["sum_gaps"] < rows[0]["sum_gaps"]


def test_T7_linear_probes_rise_with_depth_under_local_training():
    row = t07_linear_separability.probe_run(spirals_dataset(), rule="local", schedule="sequential", head="linear", epochs=50)
    probes = row["probe_x_then_h1..hL"]
    assert probes[0] < 0.5  # spirals are not linearly separable in the input
    assert all(b >= a - 0.02 for a, b in zip(probes, probes[1:]))
    assert probes[-1] > probes[0] + 0.3


def test_T8_identity_initialised_stage_starts_at_and_never_exceeds_the_greedy_loss():
    for row in t08_non_worsening.grow(init="identity", optimizer="gd", lr=0.1, steps=50):
        assert row["loss_at_init"] == pytest.approx(row["greedy_loss"], abs=1e-6)
        assert row["max_during_training"] <= row["greedy_loss"] + 1e-6  # small-step gradient descent: monotone
        assert row["final_loss"] <= row["greedy_loss"]
    for row in t08_non_worsening.grow(init="default", optimizer="gd", lr=0.1, steps=5):
        assert row["loss_at_init"] > row["greedy_loss"] + 0.01  # without the identity the new stage starts worse


def test_T9_joint_converges_faster_than_e2e_on_a_deep_sigmoid_net():
    row = t09_deep_supervision.compare(ll.data.load("digits"), activation="sigmoid", depth=6, optimizer="sgd", lr=0.1,
                                       epochs=20, seeds=(0,))
    assert row["final_loss_e2e"][0] > 2.0  # e2e's gradient vanishes: still near ln 10 = 2.30
    assert row["final_loss_joint"][0] < 0.5
    assert row["joint_faster"]


def test_T9_verdict_needs_every_vanishing_case_and_reports_where_e2e_learns():
    rows = lambda *flags: [{"vanishing": v, "joint_faster": f} for v, f in flags]  # noqa: E731
    assert t09_deep_supervision.verdict_for(rows((True, True), (False, True))) == "holds"
    assert t09_deep_supervision.verdict_for(rows((True, True), (False, False))) == "holds under stated conditions"
    assert t09_deep_supervision.verdict_for(rows((True, False), (False, True))) == "does not hold here"
    assert {c[4] for c in t09_deep_supervision.CONFIGS} == {True, False}  # checked also where e2e learns
