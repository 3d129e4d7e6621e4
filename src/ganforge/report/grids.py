"""Sample grids as PNG files, written atomically (ganforge.run.atomic_write): a failed write is one
GanforgeError line and the previous picture is kept."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from ..run import atomic_write, make_parent_dir

MIN_CELL = 48  # small images (8x8 digits) are enlarged, nearest-neighbour, to at least this many pixels


def image_grid(x: torch.Tensor, nrow: Optional[int] = None, pad: int = 2, min_cell: int = MIN_CELL) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> a uint8 [rows*H', cols*W', 3] grid with pad-pixel gutters."""
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0).clamp(-1, 1)  # a diverged G still gives a picture
    n, c, h, w = x.shape
    scale = max(1, math.ceil(min_cell / max(h, w)))
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)  # [N, C, H*s, W*s]
        h, w = h * scale, w * scale
    if c == 1:
        x = x.expand(-1, 3, -1, -1)  # [N, 3, H, W]
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((3, rows * (h + pad) + pad, cols * (w + pad) + pad), 0.6)
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = (x[i] + 1) / 2
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # [H, W, 3]


def _image_format(path: Path) -> str:
    """PIL's format name for `path`'s suffix (PNG when unknown): the temporary file's name has none."""
    return Image.registered_extensions().get(path.suffix.lower(), "PNG")


def save_grid(x: torch.Tensor, path: str | Path, nrow: Optional[int] = None) -> Path:
    path = Path(path)
    image = Image.fromarray(image_grid(x, nrow))
    make_parent_dir(path)
    atomic_write(path, lambda tmp: image.save(tmp, format=_image_format(path)))
    return path


def save_points(
    points: torch.Tensor, path: str | Path, centers: Optional[torch.Tensor] = None, title: str = ""
) -> Path:
    """A scatter plot of generated 2-D points, with the mixture's mode centres marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    p = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    try:
        ax.scatter(p[:, 0], p[:, 1], s=3, alpha=0.5, label="generated")
        if centers is not None:
            c = centers.cpu().numpy()
            ax.scatter(c[:, 0], c[:, 1], s=30, marker="x", color="red", label="modes")
            lim = float(np.abs(c).max()) * 1.5
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
        fig.tight_layout()
        make_parent_dir(path)
        fmt = path.suffix.lstrip(".").lower() or "png"
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt))
    finally:
        plt.close(fig)
    return path
