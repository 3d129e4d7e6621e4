"""Stacked digits (VEEGAN / PacGAN): three random digits in the three channels, 1,000 modes.

Each item draws three images independently from a base digit set and stacks them as
[3, H, W]; its label is the mode 100*d0 + 10*d1 + d2. `stacked-digits` uses
scikit-learn's 8x8 digits (train split: digits_split's 1,347 train images, test: its 450),
`stacked-mnist` the MNIST IDX files given with --data (train / t10k).
"""

from __future__ import annotations

import numpy as np
import torch
from .splits import digits_split

# Stacks per split (data.max_items lowers it): PacGAN's stacked-MNIST protocol trains on 128,000
# (its config's num_training_sample). A fixed set is itself a sample of the 1,000 modes: a generator
# that reproduced 25,000 stacks exactly would measure KL 0.044 at the protocol's 26,000 samples (twice
# the plug-in bias), at the 0.05 bar; with 128,000 the set adds ~0.004 to the 0.019 of the count.
# Held in memory: 98 MB for stacked-digits (float32), 301 MB for stacked-mnist (uint8) per split.
STACKED_ITEMS = 128_000


def stack_digits(
    images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """n stacks [n, 3, H, W] of images [M, H, W] (same dtype) and their modes [n]."""
    images, labels = torch.as_tensor(images), torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(images), (n, 3), generator=gen)  # [n, 3]
    x = images[idx]  # [n, 3, H, W]
    d = labels[idx]  # [n, 3]
    return x, d @ torch.tensor([100, 10, 1])


def stacked_base(name: str, path: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Base digit images [M, H, W] and labels [M] of one split."""
    if name == "stacked-digits":
        from sklearn.datasets import load_digits


        d = load_digits()
        train_idx, test_idx = digits_split()
        idx = train_idx if split == "train" else test_idx
        return d.images[idx].astype(np.float32) / 8.0 - 1.0, d.target[idx]  # [M, 8, 8] in [-1, 1]
    from .files import load_idx_split

    assert path is not None
    return load_idx_split(path, split)  # uint8 [M, 28, 28]
