"""Mode counting: toy 2-D mixtures, class coverage, and stacked MNIST (1000 modes).

KL conventions used throughout (natural log, 0 * log 0 = 0):
  mode_kl  = KL(p_gen || uniform) = sum_m p_m log(M p_m), which is finite, needs no
             smoothing, is 0 for a perfectly balanced generator and log(M) when all
             samples fall in one mode (VEEGAN/PacGAN report this direction).
  class_kl = KL(p_gen || p_real) with p_real smoothed as (p_real + eps) / (1 + K eps)
             so a class missing from the real labels gives a large finite value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.toy2d import toy2d_centers as data_toy2d_centers
from ._common import as_float64, as_int_array

_TOY2D_NAMES = ("toy2d-grid", "toy2d-ring")


def toy2d_centers(name: str) -> tuple[np.ndarray, float]:
    """Mode centres [M, 2] (float64 numpy) and per-axis std of a toy 2-D mixture: the data
    module's `ganforge.data.toy2d.toy2d_centers` (PacGAN's settings), the one definition.

    toy2d-ring: 8 Gaussians at angles 2*pi*k/8 on the unit circle, sigma 0.01.
    toy2d-grid: 25 Gaussians at {-4, -2, 0, 2, 4}^2 (row-major in x, then y), sigma 0.05.
    """
    if name not in _TOY2D_NAMES:
        raise ValueError(f"unknown toy2d dataset {name!r}; valid: {', '.join(sorted(_TOY2D_NAMES))}")
    centers, sigma = data_toy2d_centers(name)
    return centers.numpy().astype(np.float64), float(sigma)  # [M, 2]


def _frozen(name: str) -> tuple[np.ndarray, float]:
    centers, sigma = toy2d_centers(name)
    centers.setflags(write=False)
    return centers, sigma


TOY2D_MODES: dict[str, tuple[np.ndarray, float]] = {n: _frozen(n) for n in _TOY2D_NAMES}


def _kl_to_uniform(counts: np.ndarray) -> float:
    """KL(counts / sum || uniform over len(counts)); NaN when counts are all zero."""
    total = counts.sum()
    if total == 0:
        return float("nan")
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(p * counts.shape[0])))


def toy2d_modes(
    points: Any, dataset: str, min_count: int = 1, num_sigmas: float = 3.0
) -> dict[str, float]:
    """Modes covered and sample quality on a toy 2-D mixture (PacGAN protocol).

    A sample is high quality when its Euclidean distance to the nearest centre is
    <= num_sigmas * sigma. A mode is covered when at least `min_count` high-quality
    samples have it as nearest centre (PacGAN/VEEGAN variants differ in this count;
    default 1). mode_kl is KL(histogram of high-quality samples over all M modes ||
    uniform), NaN when there is no high-quality sample.
    """
    x = as_float64(points, "points")
    if x.shape[1] != 2:
        raise ValueError(f"points must have shape [N, 2], got {x.shape}")
    centers, sigma = toy2d_centers(dataset)
    dist = np.linalg.norm(x[:, None, :] - centers[None, :, :], axis=2)  # [N, M]
    nearest = dist.argmin(axis=1)  # [N]
    hq = dist[np.arange(x.shape[0]), nearest] <= num_sigmas * sigma
    counts = np.bincount(nearest[hq], minlength=centers.shape[0])  # [M]
    return {
        "modes_covered": float((counts >= min_count).sum()),
        "num_modes": float(centers.shape[0]),
        "high_quality_fraction": float(hq.mean()),
        "mode_kl": _kl_to_uniform(counts),
    }


def class_coverage(
    pred_labels_fake: Any,
    labels_real: Any,
    num_classes: int,
    min_fraction: float = 0.0,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Share of classes the generator produces, and KL of its class histogram to the real one.

    A class is covered when it is predicted for at least one generated sample and for a
    share >= min_fraction of them. class_kl = KL(p_gen || p_real) with p_real smoothed as
    (p_real + eps) / (1 + num_classes * eps).
    """
    fake = as_int_array(pred_labels_fake, "pred_labels_fake").ravel()
    real = as_int_array(labels_real, "labels_real").ravel()
    for name, arr in (("pred_labels_fake", fake), ("labels_real", real)):
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if arr.min() < 0 or arr.max() >= num_classes:
            raise ValueError(f"{name} must lie in [0, {num_classes}), got [{arr.min()}, {arr.max()}]")
    p_gen = np.bincount(fake, minlength=num_classes) / fake.size  # [K]
    p_real = np.bincount(real, minlength=num_classes) / real.size  # [K]
    q = (p_real + eps) / (1.0 + num_classes * eps)
    nz = p_gen > 0
    return {
        "class_coverage": float(np.mean(nz & (p_gen >= min_fraction))),
        "class_kl": float(np.sum(p_gen[nz] * np.log(p_gen[nz] / q[nz]))),
    }


def stacked_modes(pred_digits: Any, min_count: int = 1) -> dict[str, float]:
    """Modes covered out of 1000 on stacked MNIST, and KL(mode histogram || uniform).

    Each row holds the digits classified in the three channels; its mode is
    100*d0 + 10*d1 + d2. A mode is covered with >= min_count samples (default 1).
    The KL splits exactly into where it comes from: mode_kl = mode_kl_dependence
    (KL(joint || product of the channels' histograms): the channels going together)
    + mode_kl_channels (the sum of each channel's KL to uniform over 10 digits).
    """
    digits = as_int_array(pred_digits, "pred_digits")
    if digits.ndim != 2 or digits.shape[1] != 3 or digits.shape[0] == 0:
        raise ValueError(f"pred_digits must have shape [N, 3] with N > 0, got {digits.shape}")
    if digits.min() < 0 or digits.max() > 9:
        raise ValueError("pred_digits must lie in 0..9")
    modes = digits @ np.array([100, 10, 1])  # [N]
    counts = np.bincount(modes, minlength=1000)  # [1000]
    channels = [np.bincount(digits[:, c], minlength=10) for c in range(3)]  # 3 x [10]
    kl_channels = sum(_kl_to_uniform(h) for h in channels)
    mode_kl = _kl_to_uniform(counts)
    return {
        "modes_covered": float((counts >= min_count).sum()),
        "num_modes": 1000.0,
        "mode_kl": mode_kl,
        "mode_kl_dependence": max(mode_kl - kl_channels, 0.0),  # >= 0 exactly; max() drops float rounding
        "mode_kl_channels": kl_channels,
    }
