"""Generate from a trained run: reads config.yaml and generator.safetensors, never the checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from .data import toy2d_centers
from .errors import GanforgeError
from .nets.load import check_label, generate, load_generator
from .report import save_grid, save_points


def sample_to_path(
    run_dir: str | Path, n: int, out: str | Path, seed: int = 0, device: str = "cpu", label: Optional[int] = None
) -> Path:
    """Write n samples to out: .png grid, .npy array, or a directory of PNG files (`label`: class K only)."""
    G, cfg = load_generator(run_dir, device)
    check_label(G, label)
    x = generate(G, n, cfg.model.z_dim, seed, label=label)
    out = Path(out)
    points = x.ndim == 2
    if out.suffix.lower() == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x.numpy().astype(np.float32))
    elif out.suffix.lower() == ".png":
        if points:
            save_points(x, out, toy2d_centers(cfg.data.dataset)[0], title=f"{n} samples")
        else:
            save_grid(x, out)
    else:
        if points:
            raise GanforgeError(f"--out {out}: {cfg.data.dataset} samples are 2-D points; use a .npy or .png path")
        out.mkdir(parents=True, exist_ok=True)
        imgs = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [n, C, H, W]
        for i, im in enumerate(imgs):
            arr = im.permute(1, 2, 0).numpy()  # [H, W, C]
            Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(out / f"sample_{i:05d}.png")
    return out
