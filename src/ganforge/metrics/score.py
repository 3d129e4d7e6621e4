"""Inception Score (or the classifier score with a shipped classifier) from class probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import as_float64


def inception_score(probs: Any, splits: int = 1, eps: float = 1e-12) -> dict[str, float]:
    """exp(E_x KL(p(y|x) || p(y))) of softmax probabilities [N, K], mean and std over `splits`
    equal consecutive chunks (Salimans et al. 2016; 10 splits in the original protocol)."""
    p = as_float64(probs, "probs")
    if splits < 1 or splits > p.shape[0]:
        raise ValueError(f"splits must be in [1, {p.shape[0]}], got {splits}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("probs must be non-negative rows summing to 1")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)  # [1, K]
        kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)  # [n]
        scores.append(np.exp(kl.mean()))
    s = np.array(scores)
    return {"inception_score": float(s.mean()), "inception_score_std": float(s.std())}
