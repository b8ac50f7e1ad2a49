"""Conformal risk control of exit thresholds (Angelopoulos et al. 2022) against its formula and its guarantee."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from locallearn.exits import EXIT_POLICIES, ExitLogits
from locallearn.exits.conformal import conformal_risk_control, crc_threshold_index, drop_losses, risk_over_splits
from locallearn.exits.policies.base import first_exit
from locallearn.exits.synthetic import synthetic_exit_logits


def test_the_threshold_is_the_papers_rule_on_monotonised_losses():
    """lambda_hat = inf{lambda: n/(n+1) R_n(lambda) + B/(n+1) <= alpha} (CRC eq. 4, B = 1), written out with loops,
    the losses made non-increasing in caution as each row's running maximum over the more cautious thresholds."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        g, n = int(rng.integers(2, 12)), int(rng.integers(5, 60))
        raw = (rng.random((g, n)) < np.linspace(0, 0.5, g)[:, None]).astype(float)  # non-monotone per row
        alpha = float(rng.uniform(0.05, 0.6))
        expected, expected_bound = -1, math.nan
        for k in range(g):
            risk = sum(max(raw[j, i] for j in range(k + 1)) for i in range(n)) / n
            bound = n / (n + 1) * risk + 1 / (n + 1)
            if bound > alpha:
                break
            expected, expected_bound = k, bound
        index, bound = crc_threshold_index(torch.tensor(raw), alpha)
        assert index == expected
        assert (math.isnan(bound) and math.isnan(expected_bound)) or bound == pytest.approx(expected_bound, abs=1e-12)


def test_drop_losses_follow_the_policys_own_exit_rule():
    data = synthetic_exit_logits(n_samples=300, seed=1)
    policy = EXIT_POLICIES.create("entropy")
    grid = torch.cat([torch.tensor([math.inf]), policy.grid(data.n_exits).double()])
    losses = drop_losses(policy, data, grid)
    sureness, wrong = policy.sureness(data.logits), policy.outputs(data.logits).argmax(-1) != data.labels
    last_right = data.logits[-1].argmax(-1) == data.labels
    for g, t in enumerate(grid.tolist()):
        exit_index = first_exit(sureness, torch.full((data.n_exits - 1,), t))
        assert torch.equal(losses[g], (wrong[exit_index, torch.arange(300)] & last_right).double())
    assert losses[0].sum() == 0  # inf: nobody leaves early, so nobody is lost


def test_the_guarantee_holds_over_random_calibration_splits():
    """E[loss] <= alpha over draws of the calibration set: the mean over 100 draws sits below alpha
    (with three standard errors of Monte Carlo slack), and the rule is not vacuous (rows do leave early)."""
    data = synthetic_exit_logits(n_samples=1200, seed=0)
    alpha = 0.05
    result = risk_over_splits(data, lambda c: conformal_risk_control(c, "max-prob", max_risk=alpha), level=alpha,
                              n_splits=100, calibration_size=300, seed=0)
    assert result["mean_loss"] <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 900 / 100)
    assert result["mean_drop"] <= result["mean_loss"] + 1e-12
    assert result["mean_early_exit_fraction"] > 0.3


def test_too_few_rows_for_the_level_means_no_early_exit():
    data = synthetic_exit_logits(n_samples=15, seed=0)  # B/(n+1) = 1/16 > 0.05
    th = conformal_risk_control(data, "max-prob", max_risk=0.05)
    assert th.values == (math.inf, math.inf)


def test_a_learnable_policy_is_fitted_on_part_and_every_row_is_recorded_as_seen():
    val = synthetic_exit_logits(n_samples=400, seed=2)
    th = conformal_risk_control(val, EXIT_POLICIES.create("gate", steps=20), max_risk=0.1)
    assert th.policy.is_fitted
    assert np.array_equal(np.sort(th.seen_rows), np.sort(val.row_keys()))


def test_bad_inputs_are_refused():
    data = synthetic_exit_logits(n_samples=50, seed=0)
    with pytest.raises(ValueError, match="must never see test data"):
        conformal_risk_control(ExitLogits(data.logits, data.labels, "test"), max_risk=0.1)
    with pytest.raises(ValueError, match="'max_risk' parameter of conformal_risk_control"):
        conformal_risk_control(data, max_risk=0.0)
