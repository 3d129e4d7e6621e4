"""Evaluation maths on features: FID/KID, precision/recall/density/coverage, mode counting,
memorisation. Each metric returns {name: float}; `get_metric(name)` resolves by name."""

from .fid import (
    GaussianAccumulator,
    fid,
    fid_from_stats,
    gaussian_stats,
    kid,
    kid_subset_indices,
    poly_mmd2,
)
from .memorisation import memorisation, nearest_neighbours
from .modes import TOY2D_MODES, class_coverage, stacked_modes, toy2d_centers, toy2d_modes
from .prdc import prdc
from .registry import METRICS, get_metric
from .score import inception_score

__all__ = [
    "GaussianAccumulator",
    "METRICS",
    "TOY2D_MODES",
    "class_coverage",
    "fid",
    "fid_from_stats",
    "gaussian_stats",
    "get_metric",
    "inception_score",
    "kid",
    "kid_subset_indices",
    "memorisation",
    "nearest_neighbours",
    "poly_mmd2",
    "prdc",
    "stacked_modes",
    "toy2d_centers",
    "toy2d_modes",
]
