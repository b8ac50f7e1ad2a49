"""Calibration: validation only, targets met on validation, thresholds frozen with their provenance."""

import dataclasses
import math
import os

import pytest
import torch

from locallearn.exits import (
    CostTable, ExitLogits, Thresholds, budget_proportions, evaluate, for_budget, for_target_accuracy, risk_controlled,
    shared_threshold, sweep, synthetic_exit_logits, violation_rate,
)



COSTS = CostTable(blocks=(10.0, 10.0, 10.0), heads=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def val():
    return synthetic_exit_logits(n_samples=3000, seed=0, split="val")


@pytest.fixture(scope="module")
def heldout():
    return synthetic_exit_logits(n_samples=3000, seed=1, split="test")


CALIBRATORS = {
    "sweep": lambda d: sweep(d, "entropy", COSTS),
    "for_target_accuracy": lambda d: for_target_accuracy(d, "entropy", COSTS),
    "for_budget": lambda d: for_budget(d, "max-prob", COSTS, budget=0.6),
    "shared_threshold": lambda d: shared_threshold(d, "max-prob", COSTS, accuracy=0.5),
    "risk_controlled": lambda d: risk_controlled(d, "max-prob"),
    "violation_rate": lambda d: violation_rate(d, "max-prob", n_splits=1, calibration_size=10),
    "gate.fit": lambda d: __import__("locallearn.exits", fromlist=["x"]).LearnedGatePolicy().fit(d),
}


@pytest.mark.parametrize("name", CALIBRATORS)
def test_calibration_refuses_the_test_split(name, heldout):
    with pytest.raises(ValueError, match="must never see test data: got an ExitLogits with split='test'"):
        CALIBRATORS[name](heldout)


def test_evaluate_refuses_rows_seen_at_calibration_even_under_another_name(heldout):
    disguised = ExitLogits(heldout.logits, heldout.labels, "val")
    th = for_target_accuracy(disguised, "entropy", COSTS)
    with pytest.raises(ValueError, match="3000 rows of split 'test' that were used to calibrate"):
        evaluate(heldout, th)
    assert evaluate(disguised, th).split == "val"  # re-reading the calibration split itself is allowed


def test_sweep_runs_from_full_network_to_cheapest(val):
    frontier = sweep(val, "entropy", COSTS, n_grid=20)
    assert frontier.accuracy[0] == pytest.approx(frontier.last_exit_accuracy)
    assert frontier.relative_cost[0] == pytest.approx(33 / 31)  # all heads run, all samples reach the end
    assert all(b <= a + 1e-12 for a, b in zip(frontier.relative_cost, frontier.relative_cost[1:]))
    assert frontier.relative_cost[-1] < 0.5
    assert len(frontier.thresholds) == 1 + 2 * 20


def test_target_accuracy_is_met_on_validation_and_saves_cost(val, heldout):
    th = for_target_accuracy(val, "entropy", COSTS, max_drop=0.01)
    assert th.calibrated_on == "val" and th.method == "target-accuracy"
    assert th.details["met"]
    assert th.details["accuracy"] >= th.details["last_exit_accuracy"] - 0.01
    result = evaluate(heldout, th, COSTS)
    assert result.relative_cost < 0.9
    assert result.accuracy >= result.last_exit_accuracy - 0.03


def test_target_accepts_a_point_exactly_at_the_goal_and_refuses_one_sample_below(val):
    """The cheapest point with accuracy >= last - max_drop: on 3000 rows, last exit 2700 right, max_drop 0.01,
    a point with 2670 right (exactly the goal) qualifies, one with 2669 does not, however much cheaper."""
    frontier = sweep(val, "entropy", COSTS, n_grid=1)
    assert len(frontier.thresholds) == 3
    crafted = dataclasses.replace(frontier, accuracy=[2700 / 3000, 2670 / 3000, 2669 / 3000],
                                  relative_cost=[1.0, 0.7, 0.4], last_exit_accuracy=2700 / 3000)
    th = crafted.target(max_drop=0.01)
    assert th.details["met"] and th.details["accuracy"] == 2670 / 3000 and th.details["relative_cost"] == 0.7
    assert crafted.target(max_drop=0.01 + 1 / 3000).details["relative_cost"] == 0.4  # one more row allowed: the cheaper one
    assert crafted.target(max_drop=0.0).details["relative_cost"] == 1.0


def test_budget_thresholds_spend_the_budget_with_msdnet_proportions(val):
    th = for_budget(val, "max-prob", COSTS, budget=0.6)
    relative = (COSTS.cumulative / COSTS.full).double()
    q = torch.tensor(th.details["proportions"], dtype=torch.float64)
    assert float((q * relative).sum()) == pytest.approx(0.6, abs=1e-6)
    assert (q[1] / q[0]).item() == pytest.approx((q[2] / q[1]).item(), rel=1e-6)  # geometric: q_k ∝ p^k
    result = evaluate(val, th, COSTS)
    assert result.relative_cost == pytest.approx(0.6, abs=0.01)
    assert budget_proportions(1.0, 4).tolist() == [0.25] * 4
    for bad_p, bad_n in ((0.0, 4), (-0.5, 4), (float("nan"), 4), (float("inf"), 4), (0.5, 0)):
        with pytest.raises(ValueError, match="parameter of budget_proportions"):
            budget_proportions(bad_p, bad_n)
    with pytest.raises(ValueError, match="for_budget needs a relative budget between 0.3548 .* Got 0.1 instead"):
        for_budget(val, "max-prob", COSTS, budget=0.1)


def test_shared_threshold_is_the_cheapest_step_reaching_the_accuracy(val):
    th = shared_threshold(val, "max-prob", COSTS, accuracy=0.75)
    assert len(set(th.values)) == 1
    assert th.details["accuracy"] >= 0.75
    lower = Thresholds.fixed("max-prob", [th.values[0] - 0.02] * 2)
    assert evaluate(val, lower).accuracy < 0.75 + 0.01
    with pytest.raises(ValueError, match="cannot reach accuracy 0.99"):
        shared_threshold(val, "max-prob", COSTS, accuracy=0.99)


def test_learnable_policies_are_fitted_on_validation_during_calibration(val, heldout):
    th = for_target_accuracy(val, "weighted", COSTS, max_drop=0.0)
    assert th.policy.is_fitted
    assert evaluate(heldout, th).accuracy > 0.5


def test_exit_logits_save_load_round_trip_is_atomic(tmp_path, val):
    path = tmp_path / "cache" / "val.pt"
    val.save(path)
    back = ExitLogits.load(path)
    assert torch.equal(back.logits, val.logits) and torch.equal(back.labels, val.labels) and back.split == "val"
    assert os.listdir(path.parent) == ["val.pt"]
    with pytest.raises(ValueError, match=r"labels must be a tensor of shape \[5\]"):
        ExitLogits(torch.zeros(2, 5, 3), torch.zeros(4), "val")
    assert math.isinf(Thresholds.fixed("entropy", [math.inf]).values[0])
