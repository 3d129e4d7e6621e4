"""Nearest neighbours against brute force; memorisation on copies and on held-out data."""

import numpy as np
import pytest
import scipy.spatial.distance
import torch

from ganforge.metrics import memorisation, nearest_neighbours


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    query, ref = rng.normal(size=(57, 12)), rng.normal(size=(301, 12))
    full = scipy.spatial.distance.cdist(query, ref)
    for batch in (None, 1, 7, 1000):
        dist, idx = nearest_neighbours(query, ref, batch=batch)
        np.testing.assert_array_equal(idx, full.argmin(axis=1))
        np.testing.assert_allclose(dist, full.min(axis=1), rtol=1e-12, atol=0)
    dist_t, idx_t = nearest_neighbours(torch.from_numpy(query).float(), torch.from_numpy(ref).float())
    np.testing.assert_array_equal(idx_t, full.argmin(axis=1))
    np.testing.assert_allclose(dist_t, full.min(axis=1), rtol=1e-5, atol=0)


def test_copies_have_zero_distance():
    ref = np.random.default_rng(1).normal(size=(50, 8)) * 1e3 + 1e4  # large values: no cancellation
    dist, idx = nearest_neighbours(ref[::-1], ref)
    np.testing.assert_array_equal(idx, np.arange(50)[::-1])
    np.testing.assert_array_equal(dist, 0.0)


def _split(seed, d=8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2000, d)), rng.normal(size=(1000, d)), rng.normal(size=(2000, d))


def test_copied_training_points_are_all_memorised():
    train, test, _ = _split(2)
    fake = train[np.random.default_rng(3).choice(2000, 500)]
    out = memorisation(fake, train, test)
    assert out["memorised_fraction"] == 1.0
    assert out["median_nn_distance_fake"] == 0.0
    assert out["median_nn_distance_test"] > out["memorisation_threshold"] > 0.0


def test_held_out_data_scores_the_quantile():
    train, test, fresh = _split(4)
    # the test set against itself: exactly `quantile` of it lies strictly below its own quantile
    assert memorisation(test, train, test)["memorised_fraction"] == pytest.approx(0.05, abs=1e-12)
    out = memorisation(fresh, train, test)  # new samples from the same distribution
    assert 0.02 < out["memorised_fraction"] < 0.09
    assert out["median_nn_distance_fake"] == pytest.approx(out["median_nn_distance_test"], rel=0.1)


def test_memorisation_rejects_bad_quantile():
    train, test, fresh = _split(5, d=2)
    with pytest.raises(ValueError):
        memorisation(fresh, train, test, quantile=1.0)
