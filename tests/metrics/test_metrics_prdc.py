"""Precision/recall/density/coverage against the `prdc` package and constructed cases."""

import numpy as np
import prdc as prdc_package
import pytest
import torch

from ganforge.metrics import prdc

KEYS = ("precision", "recall", "density", "coverage")


@pytest.mark.parametrize(
    "n_real,n_fake,d,k,shift",
    [(200, 200, 8, 5, 0.0), (150, 230, 16, 3, 0.5), (300, 120, 4, 10, 1.0)],
)
def test_matches_prdc_package(n_real, n_fake, d, k, shift, capsys):
    rng = np.random.default_rng(n_real + d)
    real = rng.normal(size=(n_real, d))
    fake = 1.2 * rng.normal(size=(n_fake, d)) + shift
    ref = prdc_package.compute_prdc(real, fake, nearest_k=k)
    ours = prdc(real, fake, k=k)
    for key in KEYS:
        assert ours[key] == pytest.approx(float(ref[key]), abs=1e-9, rel=0), key
    assert set(ours) == set(KEYS) and all(isinstance(v, float) for v in ours.values())


def test_independent_of_block_size_and_input_type():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(90, 6)), rng.normal(size=(70, 6)) + 0.3
    whole = prdc(real, fake, k=4)
    assert prdc(real, fake, k=4, batch=7) == whole
    assert prdc(torch.from_numpy(real), torch.from_numpy(fake), k=4) == whole


def test_identical_sets_are_perfect():
    x = np.random.default_rng(2).normal(size=(120, 5))
    out = prdc(x, x, k=5)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    assert 0.5 < out["density"] < 1.5


def test_far_away_fakes_score_zero():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(100, 5)), rng.normal(size=(100, 5)) + 100.0
    assert prdc(real, fake, k=5) == {key: 0.0 for key in KEYS}


def test_fakes_from_one_cluster_have_precision_but_low_recall_and_coverage():
    rng = np.random.default_rng(4)
    cluster_a = rng.normal(size=(40, 5))  # 20% of the real data
    cluster_b = rng.normal(size=(160, 5)) + 50.0
    real = np.concatenate([cluster_a, cluster_b])
    fake = cluster_a.copy()  # the generator reproduces cluster A only
    out = prdc(real, fake, k=5)
    assert out["precision"] == 1.0
    assert out["recall"] == pytest.approx(0.2, abs=1e-12)
    assert out["coverage"] == pytest.approx(0.2, abs=1e-12)


def test_rejects_k_too_large_and_dimension_mismatch():
    with pytest.raises(ValueError):
        prdc(np.zeros((5, 2)), np.ones((10, 2)), k=5)
    with pytest.raises(ValueError):
        prdc(np.zeros((10, 2)), np.ones((10, 3)), k=3)
