"""Conformal risk control of exit thresholds (Angelopoulos, Bates, Fisch, Lei & Schuster, 2022,
"Conformal Risk Control", arXiv:2208.02814; ICLR 2024), beside Learn-then-Test (``risk.py``).

Loss. For a shared threshold ``t`` and a calibration row ``i``, ``l_i(t) = 1[the exit
prediction is wrong and the last exit is right]``: its mean bounds the accuracy drop against
the last exit. CRC needs losses that do not increase as the parameter grows more cautious;
``l_i`` need not be monotone (a later exit can be wrong where an earlier one was right), so
each row's loss is monotonised as its running maximum over the more cautious thresholds,
``L_i(t) = max_{t' >= t} l_i(t')`` (an upper bound of ``l_i``: controlling it controls the
drop). The candidate thresholds are the policy's data-independent grid, most cautious first,
led by ``inf`` (no early exit, loss 0).

Rule (the paper's eq. 4, losses in ``[0, B]`` with ``B = 1``): with ``n`` calibration rows
and ``R_n(t) = (1/n) sum_i L_i(t)``, take the least cautious ``t`` with
``(n / (n + 1)) R_n(t) + B / (n + 1) <= alpha`` (all more cautious ones satisfy it too).

Guarantee (the paper's Theorem 1, for exchangeable calibration and test rows):
``E[L_{n+1}(t_hat)] <= alpha``, so the *expected* accuracy drop on new data is at most
``alpha``. Unlike Learn-then-Test's ``P(drop <= delta) >= 1 - epsilon``, this bounds the mean
over calibration draws, not the chance of one bad draw: :func:`risk_over_splits` measures both
quantities for either method over random calibration/test splits.

A learnable policy is fitted on a random part of the rows first (``fit_fraction``), as in
``risk_controlled``; every row is recorded as seen.

Example:
    >>> from locallearn.exits.synthetic import synthetic_exit_logits
    >>> val = synthetic_exit_logits(n_samples=2000, seed=0)
    >>> th = conformal_risk_control(val, "max-prob", max_risk=0.02)
    >>> th.method, 0.0 <= th.details["bound"] <= 0.02
    ('conformal-risk', True)
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .._params import check_number
from .cache import ExitLogits
from .fit_part import fit_on_part
from .policies import ExitPolicy, refuse_test_split
from .thresholds import Thresholds


def drop_losses(policy: ExitPolicy, data: ExitLogits, grid: torch.Tensor) -> torch.Tensor:
    """``[G, N]`` raw losses ``l_i(t)`` (wrong at its exit while the last exit is right) for each grid threshold.

    Row ``i`` leaves at the first exit ``k < K-1`` whose sureness reaches ``t``, else at the last
    (the rule of ``ExitPolicy.decide``), for every ``t`` of the grid at once."""
    sureness = policy.sureness(data.logits)
    wrong = policy.outputs(data.logits).argmax(-1) != data.labels
    last_right = data.logits[-1].argmax(-1) == data.labels
    reaches = sureness[:-1][None] >= grid.to(sureness.dtype)[:, None, None]  # [G, K-1, N]
    reaches = torch.cat([reaches, torch.ones_like(reaches[:, :1])], dim=1)  # the last exit always takes the rest
    exit_index = reaches.to(torch.uint8).argmax(dim=1)  # the first exit reached: [G, N]
    return (wrong[exit_index, torch.arange(data.n_samples)] & last_right).double()


def crc_threshold_index(losses: torch.Tensor, max_risk: float, bound: float = 1.0) -> tuple[int, float]:
    """Index of the CRC threshold in a grid ordered most cautious first, from ``[G, N]`` losses in
    ``[0, bound]`` (monotonised here), and the bound ``(n/(n+1)) R_n + B/(n+1)`` at it.

    Example:
        >>> crc_threshold_index(torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), max_risk=0.7)
        (1, 0.6666666666666666)
    """
    monotone = torch.cummax(losses.double(), dim=0).values
    n = losses.shape[1]
    adjusted = n / (n + 1) * monotone.mean(dim=1) + bound / (n + 1)
    admissible = (adjusted <= max_risk).tolist()
    chosen = -1
    for g, ok in enumerate(admissible):  # the adjusted risk rises along the grid, so the admissible set is a prefix
        if not ok:
            break
        chosen = g
    return chosen, float(adjusted[chosen]) if chosen >= 0 else math.nan


def conformal_risk_control(
    val: ExitLogits, policy: str | ExitPolicy = "max-prob", *, max_risk: float = 0.01, fit_fraction: float = 0.5, seed: int = 0,
) -> Thresholds:
    """Shared exit threshold by conformal risk control (see the module docstring): expected accuracy
    drop against the last exit at most ``max_risk``. No early exit (``inf``) when no grid threshold
    qualifies, e.g. with fewer than ``1 / max_risk`` calibration rows."""
    refuse_test_split(val, what="conformal_risk_control")
    check_number(max_risk, name="max_risk", owner="conformal_risk_control", low=0.0, high=1.0, low_inclusive=False)
    policy, calibration = fit_on_part(val, policy, fit_fraction=fit_fraction, seed=seed, owner="conformal_risk_control")
    grid = torch.cat([torch.tensor([math.inf]), policy.grid(val.n_exits).double()])
    index, bound = crc_threshold_index(drop_losses(policy, calibration, grid), max_risk)
    chosen = float(grid[index]) if index >= 0 else math.inf
    return Thresholds.calibrated(policy, [chosen] * (val.n_exits - 1), val, "conformal-risk", max_risk=max_risk, bound=bound)


def risk_over_splits(
    data: ExitLogits,
    calibrate: Callable[[ExitLogits], Thresholds],
    *,
    level: float,
    n_splits: int = 200,
    calibration_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Repeat ``n_splits`` times: draw ``calibration_size`` rows at random, calibrate on them with
    ``calibrate``, and measure on the other rows the loss (the fraction wrong at their exit while the
    last exit is right) and the accuracy drop against the last exit (at most the loss). Returns the
    mean loss (CRC bounds its expectation by its level) with its Monte Carlo standard error over the
    draws (``mean_loss_se``), the mean drop, the fraction of draws whose
    drop exceeds ``level`` (Learn-then-Test bounds it by its epsilon) and the mean fraction of rows
    leaving early."""
    refuse_test_split(data, what="risk_over_splits")
    check_number(n_splits, name="n_splits", owner="risk_over_splits", low=1, integer=True)
    check_number(calibration_size, name="calibration_size", owner="risk_over_splits", low=1, high=data.n_samples - 1, integer=True)
    generator = torch.Generator().manual_seed(seed)
    drops, losses, early = [], [], []
    for _ in range(n_splits):
        order = torch.randperm(data.n_samples, generator=generator)
        thresholds = calibrate(data.subset(order[:calibration_size], split="calibration"))
        held_out = data.subset(order[calibration_size:], split="held-out")
        decision = thresholds.policy.decide(held_out.logits, thresholds.values)
        last_right = held_out.logits[-1].argmax(-1) == held_out.labels
        exit_right = decision.prediction == held_out.labels
        drops.append(float(last_right.double().mean() - exit_right.double().mean()))
        losses.append(float((last_right & ~exit_right).double().mean()))
        early.append(float((decision.exit < data.n_exits - 1).double().mean()))
    mean_loss = sum(losses) / n_splits
    return {
        "mean_loss": mean_loss,
        "mean_loss_se": math.sqrt(sum((v - mean_loss) ** 2 for v in losses) / max(n_splits - 1, 1) / n_splits),
        "mean_drop": sum(drops) / n_splits,
        "violation_rate": sum(d > level for d in drops) / n_splits,
        "mean_early_exit_fraction": sum(early) / n_splits,
        "n_splits": n_splits,
        "calibration_size": calibration_size,
        "level": level,
    }
