"""Shared helpers for the metrics: input conversion and chunked Euclidean distances."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

# Rows per distance block are chosen so one float64 block stays near this many bytes.
_BLOCK_BYTES = 64 * 2**20


def as_float64(x: Any, name: str = "features", ndim: int = 2) -> np.ndarray:
    """Return `x` (numpy array, torch tensor or nested list) as a float64 numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_int_array(x: Any, name: str = "labels") -> np.ndarray:
    """Return `x` as an int64 numpy array; reject non-integral values."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integers")
    return arr.astype(np.int64)


def row_blocks(n_rows: int, n_cols: int, batch: int | None = None) -> Iterator[slice]:
    """Yield row slices so that a [rows, n_cols] float64 block stays small."""
    if batch is None:
        batch = max(1, _BLOCK_BYTES // (8 * max(1, n_cols)))
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    for start in range(0, n_rows, batch):
        yield slice(start, min(start + batch, n_rows))


def sq_norms(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of each row.  # [N]"""
    return np.einsum("ij,ij->i", x, x)


def pairwise_distances(
    x: np.ndarray,
    y: np.ndarray,
    x_sq: np.ndarray | None = None,
    y_sq: np.ndarray | None = None,
) -> np.ndarray:
    """Euclidean distances [len(x), len(y)] in float64 via |x|^2 + |y|^2 - 2 x.y."""
    x_sq = sq_norms(x) if x_sq is None else x_sq
    y_sq = sq_norms(y) if y_sq is None else y_sq
    d2 = x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T)  # [Nx, Ny]
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def kth_neighbour_distances(x: np.ndarray, k: int, batch: int | None = None) -> np.ndarray:
    """Distance from each row of `x` to its k-th nearest *other* row (self excluded).  # [N]"""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < number of samples ({n}), got {k}")
    x_sq = sq_norms(x)
    out = np.empty(n, dtype=np.float64)
    for rows in row_blocks(n, n, batch):
        d = pairwise_distances(x[rows], x, x_sq[rows], x_sq)  # [b, N]
        local = np.arange(rows.stop - rows.start)
        d[local, local + rows.start] = np.inf  # drop self-distance
        out[rows] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out
