"""Evaluation maths on features: FID/KID, precision/recall/density/coverage, mode counting,
memorisation, conditional class accuracy, InfoGAN code agreement and intra-FID. Each metric returns
{name: float}; `get_metric(name)` resolves by name."""

from .conditional import (
    best_matching,
    best_matching_accuracy,
    class_accuracy,
    code_agreement,
    confusion_matrix,
    intra_fid,
    per_class_accuracy,
    per_class_fid,
)
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
    "best_matching",
    "best_matching_accuracy",
    "class_accuracy",
    "class_coverage",
    "code_agreement",
    "confusion_matrix",
    "fid",
    "fid_from_stats",
    "gaussian_stats",
    "get_metric",
    "inception_score",
    "intra_fid",
    "kid",
    "kid_subset_indices",
    "memorisation",
    "nearest_neighbours",
    "per_class_accuracy",
    "per_class_fid",
    "poly_mmd2",
    "prdc",
    "stacked_modes",
    "toy2d_centers",
    "toy2d_modes",
]
