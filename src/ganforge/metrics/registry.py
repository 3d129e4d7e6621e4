"""Name -> metric function registry; every metric returns {name: float}."""

from __future__ import annotations

from typing import Callable

from .fid import fid, kid
from .memorisation import memorisation
from .modes import class_coverage, stacked_modes, toy2d_modes
from .prdc import prdc
from .score import inception_score

MetricFn = Callable[..., dict[str, float]]

METRICS: dict[str, MetricFn] = {
    "class_coverage": class_coverage,
    "fid": fid,
    "inception_score": inception_score,
    "kid": kid,
    "memorisation": memorisation,
    "prdc": prdc,
    "stacked_modes": stacked_modes,
    "toy2d_modes": toy2d_modes,
}


def get_metric(name: str) -> MetricFn:
    """The metric function registered under `name`; ValueError listing valid names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(sorted(METRICS))}") from None
