"""KSG on data with repeated values (ReLU zeros, quantised activations) against closed-form truths.

Kraskov et al. (and scikit-learn's mutual_info_regression) add a tiny noise to break ties; without it
KSG reads far below 0 on independent tied data. Truths: independent variables have I = 0; a
bijection of a uniform variable over m values has I = ln m.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from locallearn.info import KSGMI, ksg_mi

N = 2000


def _relu(rng: np.random.Generator, d: int) -> np.ndarray:
    return np.maximum(rng.normal(size=(N, d)), 0.0)  # half of the values are exactly 0


def _levels(rng: np.random.Generator, d: int, m: int = 5) -> np.ndarray:
    return rng.integers(0, m, size=(N, d)).astype(float)  # m quantisation levels


INDEPENDENT = {
    "relu 1-d": lambda rng: (_relu(rng, 1), _relu(rng, 1)),
    "relu 2-d": lambda rng: (_relu(rng, 2), _relu(rng, 2)),
    "5 levels": lambda rng: (_levels(rng, 1), _levels(rng, 1)),
    "binary": lambda rng: (_levels(rng, 1, 2), _levels(rng, 1, 2)),
    "rounded gaussian 2-d": lambda rng: (np.round(2 * rng.normal(size=(N, 2))) / 2, np.round(2 * rng.normal(size=(N, 1))) / 2),
}


@pytest.mark.parametrize("case", list(INDEPENDENT))
@pytest.mark.parametrize("seed", [0, 1])
def test_independent_tied_data_reads_zero(case, seed):
    x, y = INDEPENDENT[case](np.random.default_rng(seed))
    assert abs(ksg_mi(x, y, seed=seed)) < 0.05


@pytest.mark.parametrize("m", [2, 5, 12])
def test_bijection_of_a_discrete_uniform_reads_ln_m(m):
    rng = np.random.default_rng(m)
    x = rng.integers(0, m, size=(N, 1)).astype(float)
    assert ksg_mi(x, 3.0 * x**2 - 1.0) == pytest.approx(math.log(m), abs=0.05)


def test_without_noise_ties_warn_and_bias_the_estimate_down():
    x, y = INDEPENDENT["relu 1-d"](np.random.default_rng(0))
    with pytest.warns(UserWarning, match="repeats values"):
        biased = ksg_mi(x, y, noise=0.0)
    assert biased < -0.5  # the failure the noise repairs (about -1.4 nats here)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ksg_mi(np.random.default_rng(1).normal(size=(50, 1)), np.random.default_rng(2).normal(size=(50, 1)), noise=0.0)


def test_noise_is_seeded():
    x, y = INDEPENDENT["5 levels"](np.random.default_rng(3))
    assert ksg_mi(x, y, seed=4) == ksg_mi(x, y, seed=4) != ksg_mi(x, y, seed=5)
    est = KSGMI(seed=4)
    est.update(x, y)
    assert est.compute() == ksg_mi(x, y, seed=4)
