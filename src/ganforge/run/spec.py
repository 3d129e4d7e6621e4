"""What a run's data looks like (images [C, H, W] or 2-D points), and how to read it from a config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import Config
from ..errors import GanforgeError


@dataclass
class Spec:
    """What a source produces: images [C, H, W] in [-1, 1], or 2-D points."""

    kind: str  # "image" | "points"
    shape: tuple[int, ...]  # (C, H, W) or (2,)
    num_classes: Optional[int] = None  # None: unlabelled
    class_names: Optional[list[str]] = None

    @property
    def image_size(self) -> Optional[int]:
        return self.shape[-1] if self.kind == "image" else None

    @property
    def channels(self) -> Optional[int]:
        return self.shape[0] if self.kind == "image" else None




def is_points(dataset: str) -> bool:
    """Whether a data set makes 2-D points (toy2d-*) rather than images."""
    return dataset.startswith("toy2d")


def spec_from_config(cfg: Config) -> Spec:
    """The data shape recorded in a resolved config (no data loading needed)."""
    if is_points(cfg.data.dataset):
        return Spec(kind="points", shape=(2,))
    if cfg.data.image_size is None or cfg.data.channels is None:
        raise GanforgeError("config has no resolved data.image_size / data.channels")
    return Spec(kind="image", shape=(cfg.data.channels, cfg.data.image_size, cfg.data.image_size),
                num_classes=cfg.model.num_classes)
