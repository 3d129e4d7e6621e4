"""Registered data sources. `build_source(cfg.data, ...)` turns a DataConfig into a Source."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GanforgeError
from ..registry import Registry
from ..run.spec import is_points  # noqa: F401  (re-exported)
from .base import InMemorySource, Source, Spec, adapt_images
from .files import load_cifar10, load_idx_split
from .folder import (
    MEMORY_LIMIT_BYTES,
    FolderDataset,
    StreamSource,
    class_labels,
    list_images,
    load_folder_into_memory,
)
from .toy2d import Toy2dSource, toy2d_centers

log = logging.getLogger("ganforge")

Builder = Callable[[DataConfig, int, torch.device, int, bool], Source]
SOURCES: Registry[Builder] = Registry("dataset")

FASHION_MNIST_DEFAULT = Path("/usr/share/datasets/fashion-mnist")
DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def build_source(
    cfg: DataConfig, seed: int, device: torch.device, batch_size: int = 64, progress: bool = False
) -> Source:
    """The Source for cfg.dataset, its images converted to cfg.channels / cfg.image_size."""
    return SOURCES.get(cfg.dataset)(cfg, seed, device, batch_size, progress)


def _tensor_source(
    name: str,
    images: np.ndarray | torch.Tensor,
    labels: Optional[np.ndarray],
    cfg: DataConfig,
    seed: int,
    device: torch.device,
    class_names: Optional[list[str]],
) -> InMemorySource:
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)  # [N, 1, H, W]
    y = torch.as_tensor(labels, dtype=torch.long) if labels is not None else None
    if cfg.max_items is not None:
        x = x[: cfg.max_items]
        y = y[: cfg.max_items] if y is not None else None
    x = adapt_images(x, cfg.channels, cfg.image_size)
    spec = Spec(
        kind="image",
        shape=tuple(x.shape[1:]),
        num_classes=len(class_names) if (y is not None and class_names) else None,
        class_names=class_names if y is not None else None,
    )
    return InMemorySource(name, x, y, spec, seed, device)


def _require_dir(cfg: DataConfig, default: Optional[Path] = None) -> Path:
    if cfg.path is None:
        if default is not None and default.is_dir():
            return default
        hint = f" (or install it at {default})" if default is not None else ""
        raise GanforgeError(f"dataset '{cfg.dataset}' needs --data DIR{hint}")
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise GanforgeError(f"--data {cfg.path}: no such directory")
    if not path.is_dir():
        raise GanforgeError(f"--data {cfg.path}: not a directory")
    return path


@SOURCES.register("digits")
def _digits(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
    """scikit-learn's 1,797 8x8 handwritten digits (values 0..16), shipped inside its wheel."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.float32) / 8.0 - 1.0  # [1797, 8, 8] in [-1, 1]
    return _tensor_source("digits", images, d.target, cfg, seed, device, DIGIT_NAMES)


def _idx_builder(name: str, default: Optional[Path], class_names: list[str]) -> Builder:
    def build(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
        images, labels = load_idx_split(_require_dir(cfg, default), cfg.split)
        return _tensor_source(name, images, labels, cfg, seed, device, class_names)

    build.__doc__ = f"{name}: IDX files (gzipped or not) from --data DIR."
    return build


SOURCES.register("mnist")(_idx_builder("mnist", None, DIGIT_NAMES))
SOURCES.register("fashion-mnist")(_idx_builder("fashion-mnist", FASHION_MNIST_DEFAULT, FASHION_NAMES))


@SOURCES.register("cifar10")
def _cifar10(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
    images, labels = load_cifar10(_require_dir(cfg), cfg.split)
    return _tensor_source("cifar10", images, labels, cfg, seed, device, CIFAR_NAMES)


@SOURCES.register("folder")
def _folder(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
    root = _require_dir(cfg)
    files = list_images(root)
    if cfg.max_items is not None:
        files = files[: cfg.max_items]
    if not files:
        raise GanforgeError(f"--data {root}: no images (png, jpg, jpeg, bmp, webp) found")
    size = cfg.image_size or 64
    channels = cfg.channels or 3
    labels, names = class_labels(root, files)
    stream = cfg.loader == "stream" or (
        cfg.loader == "auto" and len(files) * channels * size * size > MEMORY_LIMIT_BYTES
    )
    spec = Spec(kind="image", shape=(channels, size, size), num_classes=len(names) if names else None, class_names=names)
    if stream:
        dataset = FolderDataset(files, labels, size, channels)
        # Fail now, naming the folder, if nothing in it decodes (rather than deep inside a worker).
        if not any(_loads(f, size, channels) for f in files[:: max(1, len(files) // 20)][:20] + files[-5:]):
            raise GanforgeError(f"--data {root}: none of the sampled image files could be read")
        log.info("streaming %d images from %s with %d workers", len(files), root, cfg.workers)
        return StreamSource("folder", dataset, spec, seed, batch_size, cfg.workers, device)
    x, kept, skipped = load_folder_into_memory(files, size, channels, progress)
    if skipped:
        log.warning("skipped %d unreadable file(s) of %d in %s", len(skipped), len(files), root)
    if not kept:
        raise GanforgeError(f"--data {root}: none of the {len(files)} image files could be read")
    y = torch.tensor([labels[i] for i in kept]) if labels is not None else None
    src = InMemorySource("folder", x, y, spec, seed, device)
    src.skipped = [str(p) for p in skipped]  # type: ignore[attr-defined]
    return src


def _loads(path: Path, size: int, channels: int) -> bool:
    from .folder import load_image

    try:
        load_image(path, size, channels)
        return True
    except Exception:  # noqa: BLE001
        return False


def _toy2d_builder(name: str) -> Builder:
    def build(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
        if cfg.image_size is not None or cfg.channels is not None:
            raise GanforgeError(f"dataset '{name}' is 2-D points: --image-size / --channels do not apply")
        return Toy2dSource(name, seed, device)

    return build


SOURCES.register("toy2d-ring")(_toy2d_builder("toy2d-ring"))
SOURCES.register("toy2d-grid")(_toy2d_builder("toy2d-grid"))


def _stacked_builder(name: str) -> Builder:
    def build(cfg: DataConfig, seed: int, device: torch.device, batch_size: int, progress: bool) -> Source:
        from .stacked import STACKED_ITEMS, stack_digits, stacked_base

        if cfg.channels not in (None, 3):
            raise GanforgeError(f"dataset '{name}' has 3 channels (one digit each): --channels {cfg.channels} does not apply")
        path = str(_require_dir(cfg)) if name == "stacked-mnist" else None
        images, labels = stacked_base(name, path, cfg.split)
        n = min(cfg.max_items or STACKED_ITEMS, STACKED_ITEMS)
        x, y = stack_digits(images, labels, n, seed=1 if cfg.split == "train" else 2)  # [n, 3, H, W], [n]
        names = [f"{m:03d}" for m in range(1000)]
        return _tensor_source(name, x, y.numpy(), cfg, seed, device, names)

    build.__doc__ = f"{name}: three random digits in three channels, label 100*d0 + 10*d1 + d2 (1,000 modes)."
    return build


SOURCES.register("stacked-digits")(_stacked_builder("stacked-digits"))
SOURCES.register("stacked-mnist")(_stacked_builder("stacked-mnist"))

__all__ = ["SOURCES", "Source", "Spec", "InMemorySource", "build_source", "is_points", "toy2d_centers"]
