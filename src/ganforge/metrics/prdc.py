"""Precision, recall, density and coverage (Naeem et al., 2020) with the real set as reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import (
    as_float64,
    kth_neighbour_distances,
    pairwise_distances,
    row_blocks,
    sq_norms,
)


def prdc(real_feats: Any, fake_feats: Any, k: int = 5, batch: int | None = None) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real ones.

    With B(x, r) the open ball and NND_k the distance to the k-th nearest other sample
    of the same set:
      precision = share of fakes inside some real ball B(x_i, NND_k(x_i));
      recall    = share of reals inside some fake ball B(y_j, NND_k(y_j));
      density   = mean over fakes of (number of real balls containing it) / k;
      coverage  = share of reals whose own ball contains at least one fake.
    Same definitions (strict '<') as the `prdc` package; computed in float64 blocks
    of `batch` real rows so memory stays bounded.
    """
    x = as_float64(real_feats, "real_feats")
    y = as_float64(fake_feats, "fake_feats")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    real_radii = kth_neighbour_distances(x, k, batch)  # [N_real]
    fake_radii = kth_neighbour_distances(y, k, batch)  # [N_fake]
    x_sq, y_sq = sq_norms(x), sq_norms(y)

    balls_per_fake = np.zeros(y.shape[0], dtype=np.int64)  # real balls containing each fake
    real_in_fake_ball = np.zeros(x.shape[0], dtype=bool)
    real_ball_hit = np.zeros(x.shape[0], dtype=bool)
    for rows in row_blocks(x.shape[0], y.shape[0], batch):
        d = pairwise_distances(x[rows], y, x_sq[rows], y_sq)  # [b, N_fake]
        inside_real = d < real_radii[rows, None]
        balls_per_fake += inside_real.sum(axis=0)
        real_in_fake_ball[rows] = (d < fake_radii[None, :]).any(axis=1)
        real_ball_hit[rows] = inside_real.any(axis=1)

    return {
        "precision": float((balls_per_fake > 0).mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(balls_per_fake.sum() / (k * y.shape[0])),
        "coverage": float(real_ball_hit.mean()),
    }
