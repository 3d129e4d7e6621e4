"""`--tensorboard`: the stats.jsonl scalars and the sample grids as TensorBoard events under RUN/tensorboard."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..errors import GanforgeError
from ..run import layout
from .grids import image_grid

TB_DIR = layout.TENSORBOARD


class TensorBoardWriter:
    """Writes scalars (every stats record) and sample grids; `tensorboard --logdir RUN/tensorboard`."""

    def __init__(self, run_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GanforgeError(
                "--tensorboard needs the tensorboard package: pip install 'ganforge[tensorboard]' "
                "(or pip install tensorboard)"
            ) from None
        self.path = Path(run_dir) / TB_DIR
        self.writer = SummaryWriter(log_dir=str(self.path))

    def scalars(self, step: int, record: dict[str, Any]) -> None:
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(key, float(value), step)
        self.writer.flush()

    def images(self, step: int, x: torch.Tensor, tag: str = "samples") -> None:
        """A sample grid ([N, C, H, W] in [-1, 1]); 2-D point clouds are skipped."""
        if x.ndim != 4:
            return
        grid = image_grid(x)  # [H, W, 3] uint8
        self.writer.add_image(tag, grid, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


__all__ = ["TensorBoardWriter", "TB_DIR"]
