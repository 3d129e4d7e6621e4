"""Generate from a trained run: reads config.yaml and generator.safetensors, never the checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from .config import from_dict, load_yaml
from .data import toy2d_centers
from .errors import GanforgeError
from .nets import build_nets
from .report import save_grid, save_points
from .train.checkpoint import load_module_state, load_weights
from .train.rundir import RunDir
from .train.trainer import pick_device, spec_from_config


def load_generator(run_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, object]:
    """(G in eval mode, the run's Config) from a run directory."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise GanforgeError(f"--run {run.path}: no such run directory")
    if not run.config.is_file():
        raise GanforgeError(f"--run {run.path}: not a ganforge run (no config.yaml)")
    if not run.generator.is_file():
        raise GanforgeError(f"--run {run.path}: no generator weights yet ({run.generator.name} is written at the first checkpoint)")
    cfg = from_dict(load_yaml(run.config), str(run.config))
    G, _ = build_nets(spec_from_config(cfg), cfg.model)
    weights, _ = load_weights(run.generator)
    load_module_state(G, weights, str(run.generator))
    return G.to(pick_device(device)).eval(), cfg


@torch.no_grad()
def generate(
    G: torch.nn.Module, n: int, z_dim: int, seed: int = 0, batch: int = 1024, label: Optional[int] = None
) -> torch.Tensor:
    """n samples from G, with noise from a generator seeded by `seed` (same seed, same samples).

    `label`: generate class K only (conditional runs; InfoGAN: category K of the categorical code).
    """
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)  # [n, z]
    device = next(G.parameters()).device
    y = None if label is None else torch.full((batch,), label, dtype=torch.long, device=device)
    if y is None:
        return torch.cat([G(c.to(device)).cpu() for c in z.split(batch)])
    return torch.cat([G(c.to(device), y[: len(c)]).cpu() for c in z.split(batch)])


def check_label(G: torch.nn.Module, label: Optional[int]) -> None:
    """--class K must name a class of a conditional (or InfoGAN categorical) generator."""
    if label is None:
        return
    k = getattr(G, "num_classes", None)
    if not k:
        raise GanforgeError("--class needs a conditional run (model.conditioning) or InfoGAN categories (model.info_cat)")
    if not 0 <= label < k:
        raise GanforgeError(f"--class {label}: this generator has classes 0..{k - 1}")


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
