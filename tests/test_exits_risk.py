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
