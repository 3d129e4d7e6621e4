"""FID and KID against direct scipy / numpy / torchmetrics computations."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ganforge.metrics import (
    GaussianAccumulator,
    fid,
    fid_from_stats,
    gaussian_stats,
    kid,
    kid_subset_indices,
    poly_mmd2,
)


def _features(seed, n=400, d=16, shift=0.0, scale=1.0):
    """Correlated Gaussian features; the mixing matrix depends on d only, not on seed."""
    mix = np.random.default_rng(1234 + d).normal(size=(d, d)) / np.sqrt(d)
    return scale * np.random.default_rng(seed).normal(size=(n, d)) @ mix + shift


def _scipy_fid(x, y):
    """pytorch-fid's formula: scipy.linalg.sqrtm of sigma1 @ sigma2."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("seed,d,shift", [(0, 8, 0.0), (1, 16, 0.3), (2, 32, 1.0)])
def test_fid_matches_scipy_sqrtm(seed, d, shift):
    x = _features(seed, d=d)
    y = _features(seed + 100, d=d, shift=shift, scale=1.3)
    ours = fid(x, y)["fid"]
    ref = _scipy_fid(x, y)
    assert ours == pytest.approx(ref, rel=1e-6, abs=0)


def test_fid_matches_torchmetrics_compute_fid():
    from torchmetrics.image.fid import _compute_fid

    x, y = _features(3), _features(4, shift=0.5, scale=0.8)
    mu1, s1 = gaussian_stats(x)
    mu2, s2 = gaussian_stats(y)
    ref = _compute_fid(*(torch.from_numpy(a) for a in (mu1, s1, mu2, s2))).item()
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6, abs=0)


def test_gaussian_stats_match_numpy():
    x = _features(5)
    mu, sigma = gaussian_stats(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-14)


def test_fid_identical_sets_is_zero():
    x = _features(6, d=32, scale=10.0)
    scale = np.trace(np.cov(x, rowvar=False))
    value = fid(x, x)["fid"]
    assert 0.0 <= value < 1e-9 * scale


def test_fid_pure_mean_shift_equals_squared_shift():
    x = _features(7)
    shift = np.linspace(-1, 1, x.shape[1])
    assert fid(x, x + shift)["fid"] == pytest.approx(shift @ shift, rel=1e-8, abs=1e-10)


def test_fid_positive_and_increasing_with_shift():
    x = _features(8)
    y = _features(9)
    values = [fid(x, y + s)["fid"] for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert values[0] > 0
    assert all(a < b for a, b in zip(values, values[1:]))


def test_fid_accepts_torch_tensors():
    x, y = _features(10), _features(11, shift=0.2)
    as_torch = fid(torch.from_numpy(x), torch.from_numpy(y))["fid"]
    assert as_torch == pytest.approx(fid(x, y)["fid"], rel=1e-12, abs=0)
    assert isinstance(as_torch, float)


def test_fid_singular_covariance_is_finite():
    x, y = _features(12, n=10, d=32), _features(13, n=10, d=32)  # N < D: rank-deficient
    value = fid(x, y)["fid"]
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize("splits", [[400], [1, 399], [100, 100, 200], [3] * 133 + [1]])
def test_accumulator_equals_one_shot(splits):
    x = _features(14) + 1e3  # large offset: the naive sum-of-squares formula loses digits here
    acc = GaussianAccumulator()
    start = 0
    for size in splits:
        acc.update(x[start : start + size])
        start += size
    mu, sigma = acc.stats()
    mu_ref, sigma_ref = gaussian_stats(x)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-10, atol=1e-10 * np.abs(sigma_ref).max())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=8))
def test_fid_independent_of_batching(sizes):
    x = _features(15, n=sum(sizes) + 20, d=6)  # N > D: full-rank covariance
    y = _features(16, n=200, d=6, shift=0.4)
    accs = [GaussianAccumulator(), GaussianAccumulator()]
    start = 0
    for i, size in enumerate(sizes):  # alternate workers, then merge
        accs[i % 2].update(x[start : start + size])
        start += size
    accs[0].update(x[start:])
    mu, sigma = accs[0].merge(accs[1]).stats()
    batched = fid_from_stats(mu, sigma, *gaussian_stats(y))
    assert batched == pytest.approx(fid(x, y)["fid"], rel=1e-10, abs=1e-12)


def test_accumulator_rejects_dimension_change_and_too_few():
    acc = GaussianAccumulator()
    acc.update(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        acc.stats()
    with pytest.raises(ValueError):
        acc.update(np.zeros((2, 4)))


def _loop_mmd2(x, y, degree=3, gamma=None, coef0=1.0):
    """Unbiased MMD^2 written pair by pair."""
    m, d = x.shape
    gamma = 1.0 / d if gamma is None else gamma
    k = lambda a, b: (gamma * float(a @ b) + coef0) ** degree  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("degree,gamma,coef0", [(3, None, 1.0), (2, 0.5, 0.0)])
def test_poly_mmd2_matches_pairwise_loop(degree, gamma, coef0):
    x, y = _features(17, n=20, d=5), _features(18, n=20, d=5, shift=0.5)
    ours = poly_mmd2(x, y, degree, gamma, coef0)
    assert ours == pytest.approx(_loop_mmd2(x, y, degree, gamma, coef0), rel=1e-9, abs=1e-12)


def test_kid_matches_torchmetrics_on_same_subsets():
    from torchmetrics.image.kid import poly_mmd

    x, y = _features(19, n=300, d=16), _features(20, n=250, d=16, shift=0.3)
    out = kid(x, y, subsets=20, subset_size=100, seed=3)
    ref = np.array(
        [
            poly_mmd(torch.from_numpy(x[i]), torch.from_numpy(y[j]), 3, None, 1.0).item()
            for i, j in kid_subset_indices(300, 250, 20, 100, seed=3)
        ]
    )
    assert out["kid_mean"] == pytest.approx(ref.mean(), rel=1e-6, abs=0)
    assert out["kid_std"] == pytest.approx(ref.std(), rel=1e-6, abs=0)


def test_kid_near_zero_for_same_distribution_and_grows_with_shift():
    x, y = _features(21, n=600), _features(22, n=600)
    same = kid(x, y, subsets=50, subset_size=200)
    shifted = kid(x, y + 0.5, subsets=50, subset_size=200)
    # Subsets of one set overlap, which biases MMD^2 slightly negative; it stays near 0.
    identical = kid(x, x, subsets=50, subset_size=200)
    assert abs(same["kid_mean"]) < 0.05 * shifted["kid_mean"]
    assert abs(identical["kid_mean"]) < 0.05 * shifted["kid_mean"]
    assert shifted["kid_mean"] > 5 * shifted["kid_std"] / np.sqrt(50)


def test_kid_clips_subset_size_and_is_deterministic():
    x, y = _features(23, n=40), _features(24, n=300)
    clipped = kid(x, y, subsets=5, subset_size=1000, seed=1)
    explicit = kid(x, y, subsets=5, subset_size=40, seed=1)
    assert clipped == explicit
    assert kid(x, y, subsets=5, seed=2) == kid(x, y, subsets=5, seed=2)
    assert set(clipped) == {"kid_mean", "kid_std"}


def test_kid_rejects_tiny_or_mismatched_inputs():
    with pytest.raises(ValueError):
        kid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))
