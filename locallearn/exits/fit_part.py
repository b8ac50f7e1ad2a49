"""Fit a learnable exit policy on a random part of the calibration rows, keep the rest for calibration.

A risk-control guarantee (Learn-then-Test, conformal risk control) holds for rows the policy was not
fitted on, so a learnable, unfitted policy is fitted on a random ``fit_fraction`` of the rows first
and the calibration runs on the others. A policy that learns nothing, or is fitted already, keeps
every row.

Example:
    >>> from locallearn.exits.synthetic import synthetic_exit_logits
    >>> val = synthetic_exit_logits(n_samples=100, seed=0)
    >>> policy, rest = fit_on_part(val, "weighted", fit_fraction=0.3, seed=0, owner="example")
    >>> policy.is_fitted, rest.n_samples
    (True, 70)
"""

from __future__ import annotations

import torch

from .._params import check_number
from .cache import ExitLogits
from .policies import EXIT_POLICIES, ExitPolicy


def fit_on_part(
    val: ExitLogits, policy: str | ExitPolicy, *, fit_fraction: float, seed: int, owner: str
) -> tuple[ExitPolicy, ExitLogits]:
    """The policy (built from a name if need be, fitted if learnable and not yet fitted) and the rows left
    for calibration (see the module docstring); ``owner`` names the caller in the error message."""
    policy = EXIT_POLICIES.create(policy)
    if not policy.learnable or policy.is_fitted:
        return policy, val
    check_number(fit_fraction, name="fit_fraction", owner=owner, low=0.0, high=1.0, low_inclusive=False)
    order = torch.randperm(val.n_samples, generator=torch.Generator().manual_seed(seed))
    n_fit = int(fit_fraction * val.n_samples)
    policy.fit(val.subset(order[:n_fit]))
    return policy, val.subset(order[n_fit:])
