"""Inception / classifier score against closed-form cases and a direct loop."""

import numpy as np
import pytest

from ganforge.metrics import inception_score


def test_confident_and_balanced_gives_k():
    # One-hot predictions spread evenly over K classes: KL = log K for every sample.
    k = 7
    probs = np.eye(k)[np.arange(70) % k]
    assert inception_score(probs)["inception_score"] == pytest.approx(k, rel=1e-9)


def test_collapsed_or_uninformative_gives_one():
    one_class = np.eye(5)[np.zeros(40, dtype=int)]
    uniform = np.full((40, 5), 0.2)
    assert inception_score(one_class)["inception_score"] == pytest.approx(1.0, abs=1e-9)
    assert inception_score(uniform)["inception_score"] == pytest.approx(1.0, abs=1e-9)


def test_matches_direct_loop_with_splits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, 3):
        m = part.mean(0)
        scores.append(np.exp(np.mean([sum(r[j] * np.log(r[j] / m[j]) for j in range(4)) for r in part])))
    out = inception_score(p, splits=3)
    assert out["inception_score"] == pytest.approx(np.mean(scores), rel=1e-9)
    assert out["inception_score_std"] == pytest.approx(np.std(scores), rel=1e-9)


def test_rejects_rows_not_summing_to_one():
    with pytest.raises(ValueError, match="summing to 1"):
        inception_score(np.full((4, 3), 0.5))
