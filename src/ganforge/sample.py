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
from .run import atomic_write, make_parent_dir


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
        make_parent_dir(out)
        arr = x.numpy().astype(np.float32)
        atomic_write(out, lambda tmp: _save_npy(tmp, arr))
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
            img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
            atomic_write(out / f"sample_{i:05d}.png", lambda tmp: img.save(tmp, format="PNG"))
    return out


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add .npy to the temporary name
        np.save(f, arr)
