"""Conditional generation, judged by a classifier's predictions and features.

class_accuracy      share of generated items classified as the class they were generated for
                    (cGAN / projection / AC-GAN: G(z, y)).
code_agreement      InfoGAN: accuracy of the best one-to-one matching of categorical code values to
                    classes (Hungarian algorithm on the code x predicted-class confusion matrix).
intra_fid           mean over classes of the FID between the generated and the real items of a class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._common import as_int_array
from .fid import fid


def _labels(x: Any, name: str, n: int | None = None) -> np.ndarray:
    """x as a flat int64 array (with n items when n is given)."""
    arr = as_int_array(x, name).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} items, expected {n}")
    return arr


def class_accuracy(pred: Any, requested: Any) -> dict[str, float]:
    """Share of items whose predicted class is the requested one."""
    p = _labels(pred, "pred")
    r = _labels(requested, "requested", p.size)
    return {"class_accuracy": float(np.mean(p == r))}


def per_class_accuracy(pred: Any, requested: Any, num_classes: int) -> np.ndarray:
    """class_accuracy within each requested class; NaN for a class never requested.  # [K]"""
    p = _labels(pred, "pred")
    r = _labels(requested, "requested", p.size)
    if r.min() < 0 or r.max() >= num_classes:
        raise ValueError(f"requested must lie in [0, {num_classes}), got [{r.min()}, {r.max()}]")
    hits = np.bincount(r, weights=(p == r).astype(np.float64), minlength=num_classes)  # [K]
    counts = np.bincount(r, minlength=num_classes)  # [K]
    return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def confusion_matrix(rows: Any, cols: Any, n_rows: int, n_cols: int) -> np.ndarray:
    """Counts of (row value, column value) pairs, e.g. code value x predicted class.  # [R, C] int64"""
    r = _labels(rows, "rows")
    c = _labels(cols, "cols", r.size)
    for name, arr, k in (("rows", r, n_rows), ("cols", c, n_cols)):
        if arr.min() < 0 or arr.max() >= k:
            raise ValueError(f"{name} must lie in [0, {k}), got [{arr.min()}, {arr.max()}]")
    return np.bincount(r * n_cols + c, minlength=n_rows * n_cols).reshape(n_rows, n_cols)  # [R, C]


def best_matching(confusion: Any) -> np.ndarray:
    """The one-to-one row -> column matching with the largest matched count (Hungarian algorithm);
    -1 for rows left unmatched when there are more rows than columns.  # [R]"""
    m = np.asarray(confusion, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"confusion must be a non-empty matrix, got shape {m.shape}")
    rows, cols = linear_sum_assignment(m, maximize=True)
    out = np.full(m.shape[0], -1, dtype=np.int64)
    out[rows] = cols
    return out


def best_matching_accuracy(confusion: Any) -> float:
    """Share of all counts on the best one-to-one matching of rows to columns."""
    m = np.asarray(confusion, dtype=np.float64)
    total = m.sum()
    if total <= 0:
        raise ValueError("confusion has no counts")
    match = best_matching(m)
    rows = np.flatnonzero(match >= 0)
    return float(m[rows, match[rows]].sum() / total)


def code_agreement(codes: Any, pred: Any, n_codes: int, num_classes: int) -> dict[str, float]:
    """InfoGAN's measure: best_matching_accuracy of the code x predicted-class confusion matrix."""
    return {"code_agreement": best_matching_accuracy(confusion_matrix(codes, pred, n_codes, num_classes))}


def per_class_fid(real_feats: Any, real_labels: Any, fake_feats: Any, fake_labels: Any) -> dict[int, float]:
    """FID between the real and the generated features of each class in fake_labels, in class order."""
    yr = _labels(real_labels, "real_labels", len(real_feats))
    yf = _labels(fake_labels, "fake_labels", len(fake_feats))
    fr, ff = np.asarray(real_feats), np.asarray(fake_feats)
    out: dict[int, float] = {}
    for k in np.unique(yf):
        if (yr == k).sum() < 2 or (yf == k).sum() < 2:
            raise ValueError(f"class {k} needs at least 2 real and 2 generated items for a covariance")
        out[int(k)] = fid(fr[yr == k], ff[yf == k])["fid"]
    return out


def intra_fid(real_feats: Any, real_labels: Any, fake_feats: Any, fake_labels: Any) -> dict[str, float]:
    """Mean over the generated classes of the per-class FID (Miyato & Koyama 2018)."""
    values = per_class_fid(real_feats, real_labels, fake_feats, fake_labels)
    return {"intra_fid": float(np.mean(list(values.values())))}
