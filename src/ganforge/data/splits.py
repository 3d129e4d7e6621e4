"""Held-out splits for data sets that ship without one."""

from __future__ import annotations

import numpy as np

DIGITS_N = 1797
DIGITS_TEST = 450


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices [1347], test indices [450]) of scikit-learn's 1,797 digits.

    A permutation from numpy's default_rng(seed); the shipped digits classifier was
    trained on the seed-0 train part and its accuracy measured on the test part.
    """
    perm = np.random.default_rng(seed).permutation(DIGITS_N)  # [1797]
    return np.sort(perm[: DIGITS_N - DIGITS_TEST]), np.sort(perm[DIGITS_N - DIGITS_TEST :])
