"""Each shown sample's nearest training image: `ganforge eval`'s memorisation search, reused.

The reference set (the first MEM_REFERENCE_MAX training items, or digits' own training part), the
feature extractor ('auto': the shipped classifier, else pixels) and the feature cache are the
evaluation's own, so the distances here are those behind `memorised_fraction`. The training
features are computed once per data set, in the background, and kept for the life of the server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import torch

from ..config import Config
from ..errors import GanforgeError
from ..evaluate import MEM_REFERENCE_MAX, load_real
from ..evaluate.real import cached, extract, real_key
from ..metrics import nearest_neighbours
from ..metrics.features import Extractor, select_extractor


@dataclass
class NearestIndex:
    """The training reference set of one data config, its features, and the extractor that made them."""

    images: torch.Tensor  # [M, C, H, W] in [-1, 1]
    features: np.ndarray  # [M, D]
    ext: Extractor
    dataset: str

    def query(self, x: torch.Tensor, encode: Callable[[torch.Tensor], str]) -> list[dict[str, Any]]:
        """For each image of x [N, C, H, W]: {"image": encode(nearest), "distance", "index"}."""
        if tuple(x.shape[1:]) != tuple(self.images.shape[1:]):
            raise GanforgeError(f"generator output {tuple(x.shape[1:])} does not match the data {tuple(self.images.shape[1:])}")
        f, _ = extract(self.ext, x, self.dataset)  # [N, D]
        dist, idx = nearest_neighbours(f, self.features)
        return [{"image": encode(self.images[i]), "distance": round(float(d), 4), "index": int(i)}
                for d, i in zip(dist, idx)]


_INDEXES: dict[tuple, Union[NearestIndex, str]] = {}  # real_key -> index, or why there is none
_READY: dict[tuple, threading.Event] = {}  # real_key -> set once its index (or reason) is in _INDEXES
_LOCK = threading.Lock()


def nearest_index(cfg: Config, wait: bool = False) -> Union[NearestIndex, str, None]:
    """The index for the run's data, or a one-line reason it cannot be built; None while it is being
    built (in a background thread started by the first call: loading a data set and computing the
    features of its reference set takes seconds, and the explorer answers meanwhile). `wait`: block
    until it is built."""
    key = real_key(cfg)
    with _LOCK:
        ready = _READY.get(key)
        if ready is None:
            ready = _READY[key] = threading.Event()
            threading.Thread(target=_build_into, args=(key, cfg, ready), name="ganforge-nearest", daemon=True).start()
    if wait:
        ready.wait()
    return _INDEXES.get(key) if ready.is_set() else None


def _build_into(key: tuple, cfg: Config, ready: threading.Event) -> None:
    """Build the index of `key` into _INDEXES (or the reason it failed), then set `ready`."""
    try:
        _INDEXES[key] = _build(cfg)
    except Exception as e:  # noqa: BLE001 - any failure is said in the explorer's notes, once per data set
        _INDEXES[key] = str(e).splitlines()[0] if str(e) else type(e).__name__
    finally:
        ready.set()


def _build(cfg: Config) -> NearestIndex:
    """eval's memorisation reference set and its (cached) features."""
    real = load_real(cfg)
    ref = (real.mem_train if real.mem_train is not None else real.train)[:MEM_REFERENCE_MAX]
    if ref.ndim != 4:
        raise GanforgeError(f"'{cfg.data.dataset}' items are not images")
    ext = select_extractor(cfg.data.dataset, tuple(real.train.shape[1:]), "auto", None)
    name = cfg.data.dataset
    feats = cached(("mem_train", real_key(cfg), ext.name), lambda: extract(ext, ref, name)[0])  # eval's key
    return NearestIndex(ref, feats, ext, name)
