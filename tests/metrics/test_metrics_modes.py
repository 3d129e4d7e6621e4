"""Mode counting on hand-made samples with known answers."""

import math

import numpy as np
import pytest
import torch

from ganforge.metrics import TOY2D_MODES, class_coverage, stacked_modes, toy2d_centers, toy2d_modes

DATASETS = ["toy2d-ring", "toy2d-grid"]


def test_centres_match_the_protocol():
    ring, ring_sigma = toy2d_centers("toy2d-ring")
    assert ring.shape == (8, 2) and ring_sigma == 0.01
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ring[2], [0.0, 1.0], rtol=0, atol=1e-15)
    grid, grid_sigma = toy2d_centers("toy2d-grid")
    assert grid.shape == (25, 2) and grid_sigma == 0.05
    assert sorted(set(grid[:, 0])) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(c) for c in grid}) == 25
    for name in DATASETS:
        np.testing.assert_array_equal(TOY2D_MODES[name][0], toy2d_centers(name)[0])
        assert not TOY2D_MODES[name][0].flags.writeable


def test_unknown_toy_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="toy2d-grid, toy2d-ring"):
        toy2d_modes(np.zeros((3, 2)), "toy2d-spiral")


@pytest.mark.parametrize("name", DATASETS)
def test_exact_centres_cover_every_mode(name):
    centers, _ = toy2d_centers(name)
    out = toy2d_modes(np.repeat(centers, 3, axis=0), name)
    m = float(len(centers))
    assert out == {"modes_covered": m, "num_modes": m, "high_quality_fraction": 1.0, "mode_kl": 0.0}


@pytest.mark.parametrize("name", DATASETS)
def test_samples_from_the_mixture(name):
    centers, sigma = toy2d_centers(name)
    rng = np.random.default_rng(0)
    points = np.repeat(centers, 400, axis=0) + sigma * rng.normal(size=(400 * len(centers), 2))
    out = toy2d_modes(points, name)
    assert out["modes_covered"] == len(centers)
    # P(|N(0, s^2 I_2)| <= 3s) = 1 - exp(-4.5) = 0.9889
    assert out["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert 0.0 <= out["mode_kl"] < 0.01


@pytest.mark.parametrize("name", DATASETS)
def test_single_mode_collapse(name):
    centers, sigma = toy2d_centers(name)
    rng = np.random.default_rng(1)
    angle, radius = rng.uniform(0, 2 * np.pi, 200), rng.uniform(0, 2.9 * sigma, 200)
    points = centers[3] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    out = toy2d_modes(points, name)
    assert out["modes_covered"] == 1.0
    assert out["high_quality_fraction"] == 1.0
    assert out["mode_kl"] == pytest.approx(math.log(len(centers)), rel=1e-12, abs=0)


def test_off_mode_noise_covers_nothing():
    ring_noise = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, -0.5], [1.5, 1.5]])
    out = toy2d_modes(ring_noise, "toy2d-ring")
    assert out["modes_covered"] == 0.0 and out["high_quality_fraction"] == 0.0
    assert math.isnan(out["mode_kl"])
    grid_noise = np.array([[1.0, 1.0], [-3.0, 1.0], [3.0, -3.0]])
    assert toy2d_modes(grid_noise, "toy2d-grid")["modes_covered"] == 0.0


def test_three_sigma_boundary_and_min_count():
    centers, sigma = toy2d_centers("toy2d-grid")
    inside = centers[0] + np.array([2.99 * sigma, 0.0])
    outside = centers[1] + np.array([0.0, 3.01 * sigma])
    out = toy2d_modes(np.stack([inside, outside]), "toy2d-grid")
    assert out["modes_covered"] == 1.0 and out["high_quality_fraction"] == 0.5
    pts = np.concatenate([np.repeat(centers[:1], 5, axis=0), centers[1:2]])  # counts 5 and 1
    assert toy2d_modes(pts, "toy2d-grid", min_count=1)["modes_covered"] == 2.0
    assert toy2d_modes(pts, "toy2d-grid", min_count=2)["modes_covered"] == 1.0


def test_toy2d_accepts_torch_and_rejects_bad_shape():
    centers, _ = toy2d_centers("toy2d-ring")
    assert toy2d_modes(torch.from_numpy(centers).float(), "toy2d-ring")["modes_covered"] == 8.0
    with pytest.raises(ValueError):
        toy2d_modes(np.zeros((4, 3)), "toy2d-ring")


def _all_stacks():
    return np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])


def test_stacked_all_modes():
    out = stacked_modes(np.repeat(_all_stacks(), 2, axis=0))
    assert out["modes_covered"] == 1000.0 and out["num_modes"] == 1000.0
    assert out["mode_kl"] == pytest.approx(0.0, abs=1e-12)


def test_stacked_one_mode():
    out = stacked_modes(np.tile([[3, 1, 4]], (50, 1)))
    assert out["modes_covered"] == 1.0
    assert out["mode_kl"] == pytest.approx(math.log(1000), rel=1e-12, abs=0)


def test_stacked_half_the_modes_and_min_count():
    stacks = _all_stacks()[::2]  # 500 modes, once each
    out = stacked_modes(stacks)
    assert out["modes_covered"] == 500.0
    assert out["mode_kl"] == pytest.approx(math.log(2), rel=1e-12, abs=0)
    twice = np.concatenate([stacks, stacks[:10]])  # 10 modes seen twice
    assert stacked_modes(twice, min_count=2)["modes_covered"] == 10.0


def test_stacked_rejects_bad_digits():
    with pytest.raises(ValueError):
        stacked_modes(np.array([[0, 1, 10]]))
    with pytest.raises(ValueError):
        stacked_modes(np.array([[0, 1]]))


def test_class_coverage_matching_histograms():
    real = np.repeat(np.arange(10), 30)
    fake = np.repeat(np.arange(10), 7)
    out = class_coverage(fake, real, num_classes=10)
    assert out["class_coverage"] == 1.0
    assert out["class_kl"] == pytest.approx(0.0, abs=1e-12)


def test_class_coverage_collapsed_to_one_class():
    real = np.repeat(np.arange(10), 30)
    out = class_coverage(torch.full((100,), 3), torch.from_numpy(real), num_classes=10)
    assert out["class_coverage"] == pytest.approx(0.1, abs=1e-15)
    assert out["class_kl"] == pytest.approx(math.log(10), rel=1e-9, abs=0)


def test_class_coverage_min_fraction_and_unseen_real_class():
    fake = np.array([0] * 99 + [1])  # class 1 gets 1% of the samples
    real = np.array([0, 0, 2])  # class 1 never occurs in the real labels
    assert class_coverage(fake, real, 3)["class_coverage"] == pytest.approx(2 / 3, abs=1e-15)
    assert class_coverage(fake, real, 3, min_fraction=0.05)["class_coverage"] == pytest.approx(1 / 3, abs=1e-15)
    kl = class_coverage(fake, real, 3, eps=1e-6)["class_kl"]
    p0, p1 = 0.99, 0.01
    q0, q1 = (2 / 3 + 1e-6) / (1 + 3e-6), 1e-6 / (1 + 3e-6)
    assert kl == pytest.approx(p0 * math.log(p0 / q0) + p1 * math.log(p1 / q1), rel=1e-12, abs=0)
    with pytest.raises(ValueError):
        class_coverage(np.array([3]), real, 3)


def _reference_kl_split(digits):
    """The split from scipy's entropy, on the histograms counted another way (np.unique)."""
    from scipy.stats import entropy

    modes, counts = np.unique(digits @ np.array([100, 10, 1]), return_counts=True)
    joint = np.zeros(1000)
    joint[modes] = counts / counts.sum()
    margs = [np.array([np.mean(digits[:, c] == d) for d in range(10)]) for c in range(3)]
    product = np.einsum("i,j,k->ijk", *margs).reshape(-1)
    return entropy(joint, product), sum(entropy(m, np.full(10, 0.1)) for m in margs)


@pytest.mark.parametrize("case", ["independent", "copied-channel", "skewed"])
def test_stacked_kl_splits_into_dependence_and_channels(case):
    rng = np.random.default_rng(3)
    digits = rng.integers(0, 10, (5000, 3))
    if case == "copied-channel":
        digits[:, 2] = digits[:, 1]  # channel 2 repeats channel 1: ln 10 of dependence, uniform channels
    if case == "skewed":
        digits[:, 0] = rng.choice(10, 5000, p=np.r_[0.3, np.full(9, 0.7 / 9)])
        digits[:2500, 1] = digits[:2500, 0]
    out = stacked_modes(digits)
    dep, chan = _reference_kl_split(digits)
    assert out["mode_kl_dependence"] == pytest.approx(dep, rel=1e-9, abs=1e-12)
    assert out["mode_kl_channels"] == pytest.approx(chan, rel=1e-9, abs=1e-12)
    assert out["mode_kl"] == pytest.approx(dep + chan, rel=1e-9)
    if case == "copied-channel":
        assert 2.2 < out["mode_kl_dependence"] < math.log(10) + 0.01 and out["mode_kl_channels"] < 0.01
    if case == "independent":  # only the plug-in bias, about 999 / (2 * 5000) = 0.1
        assert 0.05 < out["mode_kl_dependence"] < 0.15 and out["mode_kl_channels"] < 0.01
