"""Risk-controlled thresholds keep their promise over many random calibration / test splits."""

import pytest

from locallearn.exits import risk_controlled, synthetic_exit_logits, violation_rate



def test_violation_rate_is_below_epsilon_and_exits_still_happen():
    data = synthetic_exit_logits(n_samples=5000, seed=7)
    report = violation_rate(data, "max-prob", max_drop=0.02, epsilon=0.1, n_splits=60, calibration_size=800, seed=1)
    assert report["violation_rate"] <= 0.1
    assert report["mean_early_exit_fraction"] > 0.2  # the guarantee is not bought by never exiting


def test_a_tiny_calibration_set_cannot_certify_any_early_exit():
    data = synthetic_exit_logits(n_samples=40, seed=2)
    th = risk_controlled(data, "max-prob", max_drop=0.01, epsilon=0.05)
    assert th.values == (float("inf"),) * 2 and th.details["p_value"] is None


def test_bad_risk_parameters_are_rejected():
    data = synthetic_exit_logits(n_samples=40, seed=2)
    with pytest.raises(ValueError, match="The 'epsilon' parameter of risk_controlled must be a float > 0.0 and <= 1.0. Got 0 instead."):
        risk_controlled(data, epsilon=0)


def test_the_gates_fitting_half_counts_as_seen_so_evaluate_refuses_it_under_any_name():
    import torch

    from locallearn.exits import evaluate

    data = synthetic_exit_logits(n_samples=400, seed=3)
    th = risk_controlled(data, "gate", max_drop=0.05, epsilon=0.2, fit_fraction=0.5, seed=0)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    fitting_half = data.subset(order[:200], split="test")
    with pytest.raises(ValueError, match="rows of split 'test' that were used to calibrate"):
        evaluate(fitting_half, th)
    assert th.details["n_tested"] == 200 and len(th.seen_rows) == 400


def _three_step_grid_case(n: int = 300):
    """3 exits; every sample: exit 0 right but unsure (max-prob 0.6), exit 1 wrong and fairly sure (0.92),
    exit 2 right. Under a shared threshold t the losses are 0 at t=0.99 (nobody leaves early),
    n at t=0.9 (all leave at exit 1, wrong) and 0 again at t=0.5 (all leave at exit 0, right)."""
    import math

    import torch

    from locallearn.exits import ExitLogits
    from locallearn.exits.policies.confidence import MaxProbPolicy

    class ThreeSteps(MaxProbPolicy):
        def grid(self, n_exits):
            return torch.tensor([0.99, 0.9, 0.5])

    def logit(p):  # two classes: max-prob p for class 0
        return math.log(p / (1 - p))

    rows = torch.tensor([[logit(0.6), 0.0], [0.0, logit(0.92)], [5.0, 0.0]])  # exit 1 predicts class 1
    logits = rows[:, None, :].expand(3, n, 2).clone()
    return ExitLogits(logits, torch.zeros(n, dtype=torch.long), "val"), ThreeSteps()


def test_learn_then_test_stops_at_the_first_rejected_threshold_fixed_sequence():
    data, policy = _three_step_grid_case()
    th = risk_controlled(data, policy, max_drop=0.05, epsilon=0.1)
    # t = 0.99 passes, t = 0.9 fails: fixed-sequence testing stops there, though t = 0.5 would pass again
    assert th.values == pytest.approx((0.99, 0.99))
    assert th.details["p_value"] == pytest.approx(0.95 ** 300)
