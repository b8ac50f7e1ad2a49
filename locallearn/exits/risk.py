"""Risk-controlled thresholds (Learn-then-Test) and their violation rate over random splits.

Source: Angelopoulos, Bates, Candès, Jordan & Lei, 2021, "Learn then Test: Calibrating Predictive
Algorithms to Achieve Risk Control" (arXiv:2110.01052): a binomial p-value per candidate, fixed-sequence
testing along a grid ordered most cautious first.

Guarantee. Let ``l_i = 1[exit prediction wrong and last exit right]`` and
``R(t) = E[l]`` on new data from the same distribution; the accuracy drop
against the last exit is ``E[1[last right] - 1[exit right]] <= R(t)``. For each
candidate shared threshold ``t`` (a data-independent grid, most cautious
first) the null ``R(t) > delta`` is tested with the exact binomial p-value
``P(Binomial(n, delta) <= sum_i l_i)``; by fixed-sequence testing, thresholds are
accepted in order while ``p <= epsilon`` and the last accepted is returned (no
early exit if none is). Then ``P(accuracy drop <= delta) >= 1 - epsilon`` over
the draw of the ``n`` calibration samples.

For a learnable policy the guarantee needs it fitted on other data: the
validation split is cut at random into a fitting part and a testing part. The
returned thresholds remember every row of both parts as seen, so ``evaluate``
refuses the fitting part as well, whatever split name it is given.

Example:
    >>> from locallearn.exits.synthetic import synthetic_exit_logits
    >>> th = risk_controlled(synthetic_exit_logits(n_samples=500, seed=0), "max-prob", max_drop=0.05, epsilon=0.1)
    >>> th.details["p_value"] <= 0.1 or th.values == (float("inf"),)
    True
"""

from __future__ import annotations

import math

import torch

from .._params import check_number
from .cache import ExitLogits
from .fit_part import fit_on_part
from .policies import EXIT_POLICIES, ExitPolicy, refuse_test_split
from .policies.base import first_exit
from .thresholds import Thresholds


def risk_controlled(
    val: ExitLogits, policy: str | ExitPolicy = "max-prob", *, max_drop: float = 0.01, epsilon: float = 0.1,
    fit_fraction: float = 0.5, seed: int = 0,
) -> Thresholds:
    """Learn-then-Test with a binomial p-value and fixed-sequence testing (see the module docstring)."""
    from scipy.stats import binom  # imported here: scipy.stats is slow to import

    refuse_test_split(val, what="risk_controlled")
    check_number(max_drop, name="max_drop", owner="risk_controlled", low=0.0, high=1.0, low_inclusive=False)
    check_number(epsilon, name="epsilon", owner="risk_controlled", low=0.0, high=1.0, low_inclusive=False)
    seen = val  # every row the calibration touches, the fitting part included
    policy, val = fit_on_part(val, policy, fit_fraction=fit_fraction, seed=seed, owner="risk_controlled")
    sureness = policy.sureness(val.logits)
    wrong = policy.outputs(val.logits).argmax(-1) != val.labels
    last_right = val.logits[-1].argmax(-1) == val.labels
    columns = torch.arange(val.n_samples)
    chosen, p_value = math.inf, None
    for t in policy.grid(val.n_exits).tolist():
        exit_index = first_exit(sureness, torch.full((val.n_exits - 1,), t))
        losses = int((wrong[exit_index, columns] & last_right).sum())
        p = float(binom.cdf(losses, val.n_samples, max_drop))
        if p > epsilon:
            break
        chosen, p_value = t, p
    return Thresholds.calibrated(
        policy, [chosen] * (val.n_exits - 1), seen, "risk-controlled", max_drop=max_drop, epsilon=epsilon, p_value=p_value,
        n_tested=val.n_samples,
    )


def violation_rate(
    data: ExitLogits, policy: str | ExitPolicy = "max-prob", *, max_drop: float = 0.01, epsilon: float = 0.1,
    n_splits: int = 100, calibration_size: int = 1000, seed: int = 0,
) -> dict[str, float]:
    """Repeat: draw ``calibration_size`` rows at random, calibrate with :func:`risk_controlled`, measure
    the accuracy drop against the last exit on the other rows. Returns the fraction of draws whose drop
    exceeds ``max_drop`` (the guarantee says <= ``epsilon`` in expectation), the mean drop and the mean
    fraction of samples leaving early."""
    refuse_test_split(data, what="violation_rate")
    check_number(n_splits, name="n_splits", owner="violation_rate", low=1, integer=True)
    check_number(calibration_size, name="calibration_size", owner="violation_rate", low=1, high=data.n_samples - 1, integer=True)
    generator = torch.Generator().manual_seed(seed)
    template = EXIT_POLICIES.create(policy)
    violations, drops, early = 0, [], []
    for i in range(n_splits):
        order = torch.randperm(data.n_samples, generator=generator)
        calibration = data.subset(order[:calibration_size], split="calibration")
        held_out = data.subset(order[calibration_size:], split="held-out")
        fresh = type(template)(**template.get_params()) if template.learnable else template
        th = risk_controlled(calibration, fresh, max_drop=max_drop, epsilon=epsilon, seed=seed + i)
        decision = th.policy.decide(held_out.logits, th.values)
        drop = float((held_out.logits[-1].argmax(-1) == held_out.labels).double().mean()) - float(
            (decision.prediction == held_out.labels).double().mean()
        )
        violations += drop > max_drop
        drops.append(drop)
        early.append(float((decision.exit < data.n_exits - 1).double().mean()))
    return {
        "violation_rate": violations / n_splits,
        "mean_drop": sum(drops) / n_splits,
        "mean_early_exit_fraction": sum(early) / n_splits,
        "n_splits": n_splits,
        "epsilon": epsilon,
        "max_drop": max_drop,
    }
