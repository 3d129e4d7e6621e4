"""Fréchet distance (FID) and kernel distance (KID) between two sets of features."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_float64


class GaussianAccumulator:
    """Streaming float64 mean and covariance of feature batches (Chan et al. pairwise update).

    Feed batches with `update`; `stats()` returns the same (mu, sigma) as
    `gaussian_stats` on the concatenation, whatever the batching. `merge` combines
    accumulators built on different workers.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.n = 0
        self.dim = dim
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None  # sum of outer products of deviations  # [D, D]

    def update(self, feats: Any) -> "GaussianAccumulator":
        """Add a batch of features [B, D]."""
        x = as_float64(feats)
        return self._combine(x.shape[0], x.mean(axis=0), _scatter(x))

    def merge(self, other: "GaussianAccumulator") -> "GaussianAccumulator":
        """Add everything another accumulator has seen."""
        if other.n == 0:
            return self
        return self._combine(other.n, other._mean, other._m2)

    def _combine(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> "GaussianAccumulator":
        if self.dim is not None and mean_b.shape[0] != self.dim:
            raise ValueError(f"expected feature dimension {self.dim}, got {mean_b.shape[0]}")
        self.dim = mean_b.shape[0]
        if self.n == 0:
            self.n, self._mean, self._m2 = n_b, mean_b.copy(), m2_b.copy()
            return self
        n_a, n = self.n, self.n + n_b
        delta = mean_b - self._mean  # [D]
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.n = n
        return self

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D], unbiased covariance [D, D]) of all features seen."""
        if self.n < 2:
            raise ValueError(f"need at least 2 samples for a covariance, have {self.n}")
        return self._mean.copy(), self._m2 / (self.n - 1)


def _scatter(x: np.ndarray) -> np.ndarray:
    """Sum of outer products of deviations from the batch mean.  # [D, D]"""
    xc = x - x.mean(axis=0)  # [B, D]
    return xc.T @ xc


def gaussian_stats(feats: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased (N-1) covariance [D, D] of features [N, D], in float64."""
    x = as_float64(feats)
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples for a covariance, have {x.shape[0]}")
    return x.mean(axis=0), _scatter(x) / (x.shape[0] - 1)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def fid_from_stats(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance ||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    Tr((S1 S2)^(1/2)) is the sum of square roots of the eigenvalues of the symmetric
    PSD matrix S1^(1/2) S2 S1^(1/2), which has the same spectrum as S1 S2; this needs
    no eps offset for singular covariances. Rounding below zero is clipped to 0.
    """
    mu1, mu2 = as_float64(mu1, "mu1", 1), as_float64(mu2, "mu2", 1)
    s1, s2 = as_float64(sigma1, "sigma1"), as_float64(sigma2, "sigma2")
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(
            f"shape mismatch: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}"
        )
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1  # [D, D], symmetric PSD
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def fid(real_feats: Any, fake_feats: Any) -> dict[str, float]:
    """Fréchet Inception-style distance between Gaussians fitted to two feature sets."""
    mu1, s1 = gaussian_stats(real_feats)
    mu2, s2 = gaussian_stats(fake_feats)
    return {"fid": fid_from_stats(mu1, s1, mu2, s2)}


def poly_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """Polynomial kernel (gamma * x.y + coef0)^degree, gamma defaulting to 1/D.  # [Nx, Ny]"""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    base = x @ y.T  # [Nx, Ny]
    base *= gamma
    base += coef0
    if isinstance(degree, int) and 1 <= degree <= 4:  # repeated products: much faster than pow()
        out = base.copy()
        for _ in range(degree - 1):
            out *= base
        return out
    return base**degree


def poly_mmd2(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """Unbiased MMD^2 between equal-size samples x, y [m, D] under the polynomial kernel."""
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"need two samples of equal size >= 2, got {x.shape[0]} and {y.shape[0]}")
    k_xx = poly_kernel(x, x, degree, gamma, coef0)
    k_yy = poly_kernel(y, y, degree, gamma, coef0)
    k_xy = poly_kernel(x, y, degree, gamma, coef0)
    off_xx = k_xx.sum() - np.trace(k_xx)
    off_yy = k_yy.sum() - np.trace(k_yy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid_subset_indices(
    n_real: int, n_fake: int, subsets: int, subset_size: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real, fake) index pairs `kid` draws: per subset, `subset_size` rows of each
    set without replacement, from numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return [
        (rng.choice(n_real, subset_size, replace=False), rng.choice(n_fake, subset_size, replace=False))
        for _ in range(subsets)
    ]


def kid(
    real_feats: Any,
    fake_feats: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """Kernel distance: mean and population std of unbiased polynomial-kernel MMD^2 over
    random subsets; `subset_size` is clipped to the smaller set size."""
    x, y = as_float64(real_feats, "real_feats"), as_float64(fake_feats, "fake_feats")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 samples, got {m}")
    pairs = kid_subset_indices(x.shape[0], y.shape[0], subsets, m, seed)
    if subsets > 1 and max(x.shape[0], y.shape[0]) <= _KID_FULL_KERNEL_MAX:
        scores = _subset_mmd2_full_kernels(x, y, pairs, degree, gamma, coef0)
    else:
        scores = np.array([poly_mmd2(x[ir], y[jf], degree, gamma, coef0) for ir, jf in pairs])
    return {"kid_mean": float(scores.mean()), "kid_std": float(scores.std())}


# Up to this many rows per set, `kid` computes the three kernels once instead of per subset.
_KID_FULL_KERNEL_MAX = 4096


def _subset_mmd2_full_kernels(
    x: np.ndarray, y: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]],
    degree: int, gamma: float | None, coef0: float,
) -> np.ndarray:
    """poly_mmd2 of every (real, fake) index subset from the full kernels, computed once:
    the sum of a subset's kernel block is s^T K t with 0/1 indicator rows s, t."""
    m = pairs[0][0].shape[0]
    s_x = np.zeros((len(pairs), x.shape[0]))  # [S, Nx] indicators
    s_y = np.zeros((len(pairs), y.shape[0]))  # [S, Ny]
    for row, (i, j) in enumerate(pairs):
        s_x[row, i] = 1.0
        s_y[row, j] = 1.0
    out = np.zeros(len(pairs))  # [S]
    for a, s_a in ((x, s_x), (y, s_y)):
        k = poly_kernel(a, a, degree, gamma, coef0)  # [N, N]
        block = np.einsum("sn,sn->s", s_a @ k, s_a)  # sum of each subset's [m, m] block
        out += (block - s_a @ np.diag(k)) / (m * (m - 1))  # off-diagonal part
    k_xy = poly_kernel(x, y, degree, gamma, coef0)  # [Nx, Ny]
    out -= 2.0 * np.einsum("sn,sn->s", s_x @ k_xy, s_y) / (m * m)
    return out

