"""Conditional metrics against oracles: class accuracy on hand-made cases, the Hungarian matching against
brute force over every permutation, intra-FID against per-class FIDs computed directly."""

import itertools

import numpy as np
import pytest

from ganforge.metrics import (
    best_matching,
    best_matching_accuracy,
    class_accuracy,
    code_agreement,
    confusion_matrix,
    fid,
    intra_fid,
    per_class_accuracy,
    per_class_fid,
)


def test_class_accuracy_on_hand_made_cases():
    assert class_accuracy([0, 1, 2, 3], [0, 1, 2, 3]) == {"class_accuracy": 1.0}
    assert class_accuracy([1, 2, 3, 0], [0, 1, 2, 3]) == {"class_accuracy": 0.0}
    assert class_accuracy([0, 0, 1, 2, 2], [0, 1, 1, 2, 0])["class_accuracy"] == pytest.approx(3 / 5, abs=1e-15)
    per = per_class_accuracy([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], num_classes=4)
    assert per[:3].tolist() == [0.5, 0.5, 1.0] and np.isnan(per[3])  # class 3 never requested
    with pytest.raises(ValueError, match="requested has 3 items, expected 4"):
        class_accuracy([0, 1, 2, 3], [0, 1, 2])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        per_class_accuracy([0, 1], [0, 2], num_classes=2)


def test_confusion_matrix_counts_pairs():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [1, 1, 0, 2, 2, 0], 3, 4)
    assert m.tolist() == [[0, 2, 0, 0], [1, 0, 0, 0], [1, 0, 2, 0]] and m.sum() == 6
    with pytest.raises(ValueError, match="cols must lie"):
        confusion_matrix([0], [4], 3, 4)


def _brute_force(m: np.ndarray) -> float:
    """The largest matched count over every one-to-one matching of rows to columns."""
    r, c = m.shape
    if r <= c:
        return max(sum(m[i, p[i]] for i in range(r)) for p in itertools.permutations(range(c), r))
    return max(sum(m[p[j], j] for j in range(c)) for p in itertools.permutations(range(r), c))


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (3, 5), (5, 3), (4, 6), (6, 4)])
def test_hungarian_matching_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        m = rng.integers(0, 30, size=shape)
        if m.sum() == 0:
            continue
        best = _brute_force(m)
        match = best_matching(m)
        rows = np.flatnonzero(match >= 0)
        assert len(rows) == min(shape) and len(set(match[rows].tolist())) == len(rows)  # one-to-one
        assert m[rows, match[rows]].sum() == best  # exact: integer counts
        assert best_matching_accuracy(m) == pytest.approx(best / m.sum(), abs=1e-15)


def test_code_agreement_recovers_a_permutation():
    rng = np.random.default_rng(0)
    perm = rng.permutation(10)
    codes = np.repeat(np.arange(10), 30)  # [300]
    assert code_agreement(codes, perm[codes], 10, 10) == {"code_agreement": 1.0}
    assert best_matching(confusion_matrix(codes, perm[codes], 10, 10)).tolist() == perm.tolist()
    pred = perm[codes].copy()
    pred[::10] = (pred[::10] + 1) % 10  # 30 of 300 wrong
    assert code_agreement(codes, pred, 10, 10)["code_agreement"] == pytest.approx(0.9, abs=1e-15)
    # one class for every code: only one code can be matched to it
    assert code_agreement(codes, np.zeros_like(codes), 10, 10)["code_agreement"] == pytest.approx(0.1, abs=1e-15)
    # more codes than classes: the unmatched codes count as errors
    assert code_agreement(codes, codes % 5, 10, 5)["code_agreement"] == pytest.approx(0.5, abs=1e-15)


def test_intra_fid_is_the_mean_of_per_class_fids():
    rng = np.random.default_rng(1)
    yr, yf = np.repeat(np.arange(3), 40), np.repeat(np.arange(3), [30, 25, 35])
    fr = rng.normal(size=(120, 5)) + yr[:, None]
    ff = rng.normal(size=(90, 5)) * 1.3 + 0.5 * yf[:, None]
    direct = [fid(fr[yr == k], ff[yf == k])["fid"] for k in range(3)]
    assert list(per_class_fid(fr, yr, ff, yf).values()) == pytest.approx(direct, rel=1e-12)
    assert intra_fid(fr, yr, ff, yf)["intra_fid"] == pytest.approx(np.mean(direct), rel=1e-12)
    assert intra_fid(fr, yr, fr, yr)["intra_fid"] == pytest.approx(0.0, abs=1e-8)
    assert intra_fid(fr, yr, ff, yf)["intra_fid"] != pytest.approx(fid(fr, ff)["fid"], rel=1e-3)  # not the pooled FID
    with pytest.raises(ValueError, match="class 3 needs at least 2"):
        intra_fid(fr, yr, ff, np.where(yf == 2, 3, yf))
