"""Nearest-neighbour search and a memorisation score against the training set."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_float64, row_blocks, sq_norms


def nearest_neighbours(
    query_feats: Any, ref_feats: Any, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest reference row for each query row: (distances [Q], indices [Q]).

    Searched in float64 blocks of `batch` query rows; the returned distance is recomputed
    directly as ||q - r|| so exact copies give 0.0.
    """
    q = as_float64(query_feats, "query_feats")
    r = as_float64(ref_feats, "ref_feats")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"feature dimensions differ: {q.shape[1]} vs {r.shape[1]}")
    r_sq = sq_norms(r)
    idx = np.empty(q.shape[0], dtype=np.int64)
    for rows in row_blocks(q.shape[0], r.shape[0], batch):
        # |q|^2 is constant per row, so the argmin of |r|^2 - 2 q.r is the nearest row.
        idx[rows] = np.argmin(r_sq[None, :] - 2.0 * (q[rows] @ r.T), axis=1)  # [b]
    dist = np.linalg.norm(q - r[idx], axis=1)  # [Q]
    return dist, idx


def memorisation(
    fake_feats: Any,
    train_feats: Any,
    test_feats: Any,
    quantile: float = 0.05,
    batch: int | None = None,
) -> dict[str, float]:
    """Share of generated samples suspiciously close to a training sample.

    threshold = the `quantile` (default 5th percentile, linear interpolation) of the
    held-out test set's nearest-training-neighbour distances; memorised_fraction = share
    of fakes whose nearest-training distance is strictly below it. Held-out real data
    scores `quantile` by construction: that is the floor to compare against.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    d_fake, _ = nearest_neighbours(fake_feats, train_feats, batch)
    d_test, _ = nearest_neighbours(test_feats, train_feats, batch)
    threshold = float(np.quantile(d_test, quantile))
    return {
        "memorised_fraction": float((d_fake < threshold).mean()),
        "memorisation_threshold": threshold,
        "median_nn_distance_fake": float(np.median(d_fake)),
        "median_nn_distance_test": float(np.median(d_test)),
    }
