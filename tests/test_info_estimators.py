"""The estimator API: class == function twin, registry, units, input errors, autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from locallearn.info import (
    ESTIMATORS, HSIC, KDEMI, KSGMI, BinningMI, NeuralMI, binning_mi, hsic, hsic_tensor, kde_mi,
    kde_mi_tensor, ksg_mi, neural_mi,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 3))
T = np.tanh(X @ RNG.normal(size=(3, 4)))
LABELS = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)

TWINS = [
    (BinningMI, binning_mi, dict(bins=10, discrete_x=True), X, T),
    (BinningMI, binning_mi, dict(bins=5, strategy="quantile", discrete_y=True), T, LABELS),
    (KDEMI, kde_mi, dict(noise_var=0.1, bound="lower"), LABELS, T),
    (KSGMI, ksg_mi, dict(k=4, standardize=False), X, T),
    (HSIC, hsic, dict(normalization="cosine", scale_by_dim=True, sigma=2.0), X, T),
    (NeuralMI, neural_mi, dict(steps=10, batch_size=32, bound="dv"), X, T),
]


@pytest.mark.parametrize("cls, fn, params, x, y", TWINS, ids=lambda v: getattr(v, "__name__", ""))
def test_class_accumulating_batches_equals_function(cls, fn, params, x, y):
    est = cls(**params)
    for part in np.array_split(np.arange(len(x)), 3):
        est.update(x[part], y[part])
    assert est.compute() == fn(x, y, **params)
    est.reset()
    est.update(x[:50], y[:50])
    assert est.compute() == fn(x[:50], y[:50], **params)


def test_registry_builds_every_estimator_by_name():
    assert ESTIMATORS.names() == ["binning", "hsic", "kde", "ksg", "neural"]
    assert isinstance(ESTIMATORS.create("ksg", k=5), KSGMI)
    with pytest.raises(ValueError, match="Known estimators: binning, hsic, kde, ksg, neural"):
        ESTIMATORS.get("mine")


def test_hyper_parameters_are_read_back():
    assert repr(KSGMI(k=5)) == "KSGMI(k=5, standardize=True, noise=1e-10, seed=0, base=2.718281828459045)"


@pytest.mark.parametrize("fn", [binning_mi, kde_mi, ksg_mi])
def test_bits_are_nats_over_ln2(fn):
    args = (LABELS, T) if fn is kde_mi else (X, T)
    assert fn(*args, base=2) == pytest.approx(fn(*args) / math.log(2), rel=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: ksg_mi(X, T[:-1]), "same number of samples; got 300 and 299"),
    (lambda: ksg_mi(np.full((5, 1), np.nan), np.ones((5, 1))), "x contains NaN"),
    (lambda: binning_mi(3.0, [1.0]), "got a scalar"),
    (lambda: ksg_mi(X[:3], T[:3], k=3), "At least 4 samples are needed; got 3"),
    (lambda: KSGMI(k=0), "The 'k' parameter of KSGMI must be an int >= 1. Got 0 instead."),
    (lambda: ksg_mi(X, T, noise=-1e-3), "The 'noise' parameter of ksg_mi must be a float >= 0.0. Got -0.001 instead."),
    (lambda: kde_mi(LABELS, T, noise_var=-1.0), "'noise_var' parameter of kde_mi must be a float > 0.0"),
    (lambda: KDEMI(bound="middle"), "'bound' parameter of KDEMI must be one of 'upper', 'lower'"),
    (lambda: binning_mi(X, T, strategy="quantile", value_range=(-1, 1)), "only applies to strategy='uniform'"),
    (lambda: binning_mi(X, T, value_range=(1, -1)), "low < high"),
    (lambda: binning_mi(X, T, base=1), "'base' parameter of binning_mi must be a float > 1.0"),
    (lambda: hsic(torch.zeros(4, 2), torch.zeros(5, 2)), "got 4 and 5"),
    (lambda: neural_mi(X, T, bound="nwj"), "'bound' parameter of neural_mi must be one of 'infonce', 'dv'"),
    (lambda: kde_mi_tensor(torch.zeros(4, 2), torch.zeros(3), noise_var=1.0), "one label per row of h"),
])
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_update_rejects_a_batch_with_a_different_width():
    est = KSGMI()
    est.update(X[:10], T[:10])
    with pytest.raises(ValueError, match="Every batch of x must have 3 features; got 2"):
        est.update(X[:10, :2], T[:10])
    with pytest.raises(RuntimeError, match="needs at least one update"):
        KSGMI().compute()


def test_binning_deterministic_layer_on_discrete_inputs():
    # Shwartz-Ziv & Tishby: T = h(X) deterministic, X uniform over N distinct inputs, so
    # I(X;T) = H(T_binned) <= ln N, reached when no two inputs share a bin; and I(T;Y) <= H(Y).
    n = len(X)
    assert binning_mi(X, T, bins=10_000, discrete_x=True) == pytest.approx(math.log(n), abs=1e-12)
    coarse = binning_mi(X, T, bins=2, discrete_x=True)
    assert coarse < math.log(n) and coarse <= 4 * math.log(2) + 1e-12  # 4 units x 2 bins
    h_y = binning_mi(LABELS, LABELS, discrete_x=True, discrete_y=True)
    assert 0 < binning_mi(T, LABELS, discrete_y=True) <= h_y + 1e-12


def test_quantile_bins_resolve_relu_like_activity_that_equal_width_bins_miss():
    # Heavy-tailed ReLU activity: equal-width bins put almost every sample in the first bin.
    a = np.maximum(0, RNG.standard_cauchy(size=(2000, 1)))
    ids = np.arange(2000)
    uniform = binning_mi(ids, a, bins=30, discrete_x=True)
    quantile = binning_mi(ids, a, bins=30, strategy="quantile", discrete_x=True)
    assert quantile > uniform + 1.0


def test_hsic_matches_the_textbook_sum_formula():
    # HSIC_b = (1/N^2) sum K L + (1/N^4) sum K sum L - (2/N^3) sum_ij sum_q K_iq L_qj, then x N^2/(N-1)^2
    x, y = torch.from_numpy(X[:40]), torch.from_numpy(T[:40])
    from locallearn.info import gaussian_gram
    k, l = gaussian_gram(x, sigma=1.3), gaussian_gram(y, sigma=0.7)
    n = 40
    v = (k * l).sum() / n**2 + k.sum() * l.sum() / n**4 - 2 * (k @ l).sum() / n**3
    assert hsic(x, y, sigma=1.0) != pytest.approx(float(v * n**2 / (n - 1) ** 2))  # sigma matters
    k = gaussian_gram(x, sigma=1.0)
    l = gaussian_gram(y, sigma=1.0)
    v = (k * l).sum() / n**2 + k.sum() * l.sum() / n**4 - 2 * (k @ l).sum() / n**3
    assert hsic(x, y, sigma=1.0) == pytest.approx(float(v * n**2 / (n - 1) ** 2), rel=1e-10)


def test_nhsic_is_one_for_identical_inputs_and_scale_free_with_the_median_bandwidth():
    x = torch.from_numpy(X)
    assert hsic(x, x, normalization="cosine") == pytest.approx(1.0, abs=1e-12)
    t = torch.from_numpy(T)
    # rel 1e-5, not 1e-12: squared distances come from the Gram expansion |a|^2 + |b|^2 - 2ab,
    # whose cancellation error for close pairs does not scale exactly with the data.
    assert hsic(10 * x, t, normalization="cosine") == pytest.approx(hsic(x, t, normalization="cosine"), rel=1e-5)


def test_torch_estimators_are_differentiable_and_match_their_float_twins():
    h = torch.from_numpy(T).requires_grad_()
    groups = torch.from_numpy(LABELS)
    value = kde_mi_tensor(h, groups, noise_var=0.1) - hsic_tensor(h, torch.from_numpy(X), normalization="cosine")
    value.backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0
    assert float(kde_mi_tensor(h.detach(), groups, noise_var=0.1)) == pytest.approx(kde_mi(LABELS, T, noise_var=0.1))


@pytest.mark.parametrize("name", ESTIMATORS.names())
def test_every_registered_estimator_conforms(name):
    from locallearn.info.conformance import check_estimator

    kw = {"steps": 5, "batch_size": 16} if name == "neural" else {}
    check_estimator(ESTIMATORS.create(name, **kw))


def test_the_conformance_check_catches_a_class_that_drifts_from_its_function():
    from locallearn.info.conformance import check_estimator

    @ESTIMATORS.register("test-drifting")
    class Drifting(KSGMI):
        def compute(self) -> float:
            return super().compute() + 1e-3

    try:
        with pytest.raises(AssertionError, match="differs from its function"):
            check_estimator(Drifting())
    finally:
        del ESTIMATORS._classes["test-drifting"]
