"""HSIC against the HSIC-bottleneck authors' formulas, written out (Ma, Lewis & Kleijn 2020;
choasma/HSIC-bottleneck, source/hsicbt/math/hsic.py), and the median heuristic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from locallearn.info import HSIC, gaussian_gram, hsic, hsic_tensor


def _pair(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g, dtype=torch.float64)
    return x, torch.tanh(x[:, :4]) + 0.5 * torch.randn(n, 4, generator=g, dtype=torch.float64)


def _authors_nhsic_cca(x: torch.Tensor, y: torch.Tensor, sigma: float, epsilon: float = 1e-5) -> torch.Tensor:
    """hsic_normalized_cca: Gaussian kernel of width 2 sigma^2 d, right-centred, regularised inverse."""
    m = x.shape[0]
    h = torch.eye(m, dtype=x.dtype) - torch.ones(m, m, dtype=x.dtype) / m

    def kernelmat(a):
        r = (a * a).sum(1).view(-1, 1)
        dist = (r - 2 * a @ a.T + r.T).abs()
        return torch.exp(-dist / (2.0 * sigma * sigma * a.shape[1])) @ h

    kxc, kyc = kernelmat(x), kernelmat(y)
    rx = kxc @ torch.inverse(kxc + epsilon * m * torch.eye(m, dtype=x.dtype))
    ry = kyc @ torch.inverse(kyc + epsilon * m * torch.eye(m, dtype=x.dtype))
    return (rx * ry.T).sum()


@pytest.mark.parametrize("sigma", [5.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_cca_normalisation_is_the_authors_formula(sigma, seed):
    x, y = _pair(seed=seed)
    ours = hsic_tensor(x, y, sigma=sigma, scale_by_dim=True, normalization="cca")
    torch.testing.assert_close(ours, _authors_nhsic_cca(x, y, sigma), rtol=1e-7, atol=1e-7)
    labels = torch.nn.functional.one_hot(torch.arange(48) % 10, 10).double()
    torch.testing.assert_close(hsic_tensor(x, labels, sigma=sigma, scale_by_dim=True, normalization="cca"),
                               _authors_nhsic_cca(x, labels, sigma), rtol=1e-7, atol=1e-7)


def test_cca_normalisation_differs_from_the_cosine_one():
    x, y = _pair()
    noise = torch.randn(48, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    kw = dict(sigma=5.0, scale_by_dim=True, normalization="cca")
    assert hsic(x, x, **kw) > 2 * hsic(x, noise, **kw)
    assert hsic(x, y, **kw) != pytest.approx(hsic(x, y, sigma=5.0, scale_by_dim=True, normalization="cosine"), rel=0.1)
    est = HSIC(**kw)
    est.update(x[:20], y[:20]), est.update(x[20:], y[20:])
    assert est.compute() == hsic(x, y, **kw)


@pytest.mark.parametrize("scale_by_dim", [False, True])
def test_sigma_none_is_the_median_heuristic_whatever_scale_by_dim(scale_by_dim):
    a = np.random.default_rng(0).normal(size=(40, 256))
    dist = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    pairs = dist[np.triu_indices(40, 1)]
    off = np.sort(pairs[pairs > 0])
    med = off[(len(off) - 1) // 2]  # the lower middle value of an even count, as torch.median takes
    want = np.exp(-dist**2 / (2 * med**2))
    got = gaussian_gram(torch.from_numpy(a), sigma=None, scale_by_dim=scale_by_dim).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert 0.2 < got[np.triu_indices(40, 1)].min() < got[np.triu_indices(40, 1)].max() < 0.95  # not ~1 everywhere


@pytest.mark.parametrize("kw, message", [
    ({"normalization": "ratio"}, "The 'normalization' parameter of hsic_tensor must be one of 'none', 'cosine', 'cca'. Got 'ratio' instead."),
    ({"eps": 0.0}, "The 'eps' parameter of hsic_tensor must be a float > 0.0. Got 0.0 instead."),
])
def test_bad_parameters_are_named(kw, message):
    x, y = _pair()
    with pytest.raises(ValueError) as err:
        hsic_tensor(x, y, **kw)
    assert str(err.value) == message


def test_median_squared_is_the_authors_sigma_estimation():
    # choasma/HSIC-bottleneck sigma_estimation: sx = np.median of the strictly lower triangle of the squared
    # distances (zeros kept; the mean if the median is <= 0; at least 1e-2), kernel exp(-D / (2 sx^2))
    a = np.random.default_rng(1).normal(size=(30, 5))
    a[1] = a[0]  # a duplicate pair: its zero distance stays in the median
    d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    sx = max(np.median(d2[np.tril_indices(30, -1)]), 1e-2)
    want = np.exp(-d2 / (2 * sx * sx))
    got = gaussian_gram(torch.from_numpy(a), sigma=None, median="squared").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_the_hsic_bottleneck_rule_takes_the_authors_median_by_default():
    from locallearn import rules

    assert rules.create("ib", sigma=None).median == "squared"
    with pytest.raises(ValueError, match="'median' parameter of InformationBottleneck must be one of 'distance', 'squared'"):
        rules.create("ib", median="mean")
