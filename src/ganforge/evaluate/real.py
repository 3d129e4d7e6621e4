"""The real data a generator is measured against, and features of fixed real sets (cached per process)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..config import Config
from ..data import build_source, is_points
from ..data.splits import digits_split
from ..data.toy2d import Toy2dSource
from ..errors import GanforgeError
from ..metrics.features import Extractor

log = logging.getLogger("ganforge")

STACKED = ("stacked-digits", "stacked-mnist")
TOY2D_N = 2500  # PacGAN's protocol


@dataclass
class RealData:
    """Real images (or points) the generator is measured against."""

    train: torch.Tensor  # what the generator was trained on  # [N, ...]
    train_labels: Optional[torch.Tensor]
    held_out: Optional[torch.Tensor]  # a split it did not see, if the data set has one
    held_out_name: str  # how `held_out` was made (protocol text)
    mem_train: Optional[torch.Tensor] = None  # memorisation reference (default: train)
    num_classes: Optional[int] = None


_REAL_CACHE: dict[tuple, RealData] = {}
_TEST_CACHE: dict[tuple, tuple[Optional[torch.Tensor], Optional[torch.Tensor], str]] = {}
_FEATURE_CACHE: dict[tuple, np.ndarray] = {}


def real_key(cfg: Config) -> tuple:
    """The data settings that decide the real set (the cache key)."""
    d = cfg.data
    return (d.dataset, d.path, d.image_size, d.channels, d.max_items)


def cached(key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Features of a fixed real set, computed once per process (evaluations during training)."""
    if key not in _FEATURE_CACHE:
        _FEATURE_CACHE[key] = compute()
    return _FEATURE_CACHE[key]


def load_real(cfg: Config) -> RealData:
    """Real data for the run's data config (cached per process), on the CPU."""
    key = real_key(cfg)
    if key not in _REAL_CACHE:
        _REAL_CACHE[key] = _load_real(cfg)
    return _REAL_CACHE[key]


def _load_real(cfg: Config) -> RealData:
    """RealData built from the data source (uncached)."""
    cpu = torch.device("cpu")
    name = cfg.data.dataset
    if is_points(name):
        train = Toy2dSource(name, 10_001, cpu).batch(4 * TOY2D_N)[0]  # [4N, 2]
        held = Toy2dSource(name, 10_002, cpu).batch(4 * TOY2D_N)[0]
        return RealData(train, None, held, "fresh points from the mixture")
    src = build_source(dataclasses.replace(cfg.data, split="train"), 0, cpu)
    if not hasattr(src, "all_images"):
        raise GanforgeError(f"dataset '{name}' is streamed from disk; evaluation needs it in memory (--set data.loader=memory)")
    train, labels = src.all_images(), src.labels
    k = src.spec.num_classes
    if name == "digits":
        tr, te = digits_split()
        tr, te = tr[tr < len(train)], te[te < len(train)]
        return RealData(train, labels, train[te], "digits_split test part (450; the generator saw it too)",
                        mem_train=train[tr], num_classes=k)
    held, held_name = None, "none"
    if name != "folder":
        try:
            test_cfg = dataclasses.replace(cfg.data, split="test", max_items=None)
            held, held_name = build_source(test_cfg, 0, cpu).all_images(), "test split"
        except GanforgeError as e:
            log.warning("no held-out split for %s (%s)", name, e)
    return RealData(train, labels, held, held_name, num_classes=k)


def classifier_test_set(cfg: Config) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], str]:
    """(images, labels, description) of the split the shipped classifier's accuracy is documented on,
    at the run's geometry and whatever data.max_items says (cached per process); (None, None, why) if absent."""
    key = real_key(cfg)[:-1]
    if key not in _TEST_CACHE:
        _TEST_CACHE[key] = _classifier_test_set(cfg)
    return _TEST_CACHE[key]


def _classifier_test_set(cfg: Config) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], str]:
    """classifier_test_set, uncached: digits_split's test part for digits, else the test split."""
    cpu = torch.device("cpu")
    split = "train" if cfg.data.dataset == "digits" else "test"
    try:
        src = build_source(dataclasses.replace(cfg.data, split=split, max_items=None), 0, cpu)
    except GanforgeError as e:
        return None, None, f"no test split ({e})"
    if not hasattr(src, "all_images") or src.labels is None:
        return None, None, "no labelled test split"
    x, y = src.all_images(), src.labels
    if cfg.data.dataset == "digits":
        te = torch.as_tensor(digits_split()[1])
        return x[te], y[te], f"digits_split test part ({len(te)})"
    return x, y, f"test split ({len(x)})"


def floor_set(real: RealData, perm: torch.Tensor, n: int) -> tuple[Optional[torch.Tensor], str]:
    """n real items disjoint from the reference set: held-out split first, else the rest of train."""
    if real.held_out is not None and len(real.held_out) >= n:
        return real.held_out[:n], real.held_out_name
    if len(perm) >= 2 * n:
        return real.train[perm[n : 2 * n]], "disjoint training items"
    return None, "none"


def extract(ext: Extractor, x: torch.Tensor, dataset: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Features (stacked data: the three channels' features side by side) and predictions."""
    if dataset in STACKED and ext.name.startswith("classifier:"):
        parts = [ext(x[:, c : c + 1])[0] for c in range(3)]
        return np.concatenate(parts, axis=1), None  # [N, 3 * D]
    return ext(x)


def stacked_digits(ext: Extractor, x: torch.Tensor) -> np.ndarray:
    """The digit classified in each channel.  # [N, 3]"""
    return np.stack([ext(x[:, c : c + 1])[1] for c in range(3)], axis=1)
