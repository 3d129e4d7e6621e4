"""A trained generator from a run directory, and sampling from it by seed.

run/ reads the files (config.yaml, generator.safetensors, the data spec); this module builds the
network they describe, which is nets' job. sample, evaluate, report and the API load generators here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..config import from_dict, load_yaml
from ..errors import GanforgeError
from ..run import RunDir, load_checkpoint, load_module_state, load_weights, pick_device, spec_from_config
from . import build_nets


def load_generator(run_dir: str | Path, device: str = "cpu", ema: bool = True) -> tuple[torch.nn.Module, object]:
    """(G in eval mode, the run's Config) from a run directory (its EMA weights when kept, unless ema=False)."""
    G, cfg, _ = load_run_generator(run_dir, device, ema)
    return G, cfg


def load_run_generator(
    run_dir: str | Path, device: str = "cpu", ema: bool = True
) -> tuple[torch.nn.Module, object, dict[str, str]]:
    """(G in eval mode, the run's Config, its weights' metadata: "ema" "true"/"false", "step").

    generator.safetensors holds the EMA weights when the run kept an EMA (train.ema_decay); ema=False
    then reads the trained weights from checkpoints/last.pt instead (weights-only load).
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise GanforgeError(f"--run {run.path}: no such run directory")
    if not run.config.is_file():
        raise GanforgeError(f"--run {run.path}: not a ganforge run (no config.yaml)")
    if not run.generator.is_file():
        raise GanforgeError(f"--run {run.path}: no generator weights yet ({run.generator.name} is written at the first checkpoint)")
    cfg = from_dict(load_yaml(run.config), str(run.config))
    G, _ = build_nets(spec_from_config(cfg), cfg.model)
    weights, meta = load_weights(run.generator)
    meta = {**meta, "ema": meta.get("ema", "false")}
    where = str(run.generator)
    if meta["ema"] == "true" and not ema:
        if not run.last.is_file():
            raise GanforgeError(f"ema=False: {run.path} has no {run.last.relative_to(run.path)} with the trained (non-EMA) weights")
        state = load_checkpoint(run.last)
        weights, where = state["G"], f"{run.last}: G"
        meta = {**meta, "ema": "false", "step": str(state.get("step", meta.get("step", "")))}
    load_module_state(G, weights, where)
    return G.to(pick_device(str(device))).eval(), cfg, meta


@torch.no_grad()
def generate(
    G: torch.nn.Module, n: int, z_dim: int, seed: int = 0, batch: int = 1024, label: Optional[int] = None,
    labels: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """n samples from G, with noise from a generator seeded by `seed` (same seed, same samples).

    `label`: generate class K only (conditional runs; InfoGAN: category K of the categorical code).
    `labels`: one class (or InfoGAN category) per sample, [n] integers; the noise is the same as without.
    """
    if label is not None and labels is not None:
        raise GanforgeError("generate: give label or labels, not both")
    if labels is not None and labels.shape != (n,):
        raise GanforgeError(f"generate: labels must have shape ({n},), got {tuple(labels.shape)}")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=gen)  # [n, z]
    device = next(G.parameters()).device
    if label is not None:
        labels = torch.full((n,), label, dtype=torch.long)  # [n]
    if labels is None:
        return torch.cat([G(c.to(device)).cpu() for c in z.split(batch)])
    y = labels.to(device=device, dtype=torch.long)
    return torch.cat([G(c.to(device), yc).cpu() for c, yc in zip(z.split(batch), y.split(batch))])


def check_label(G: torch.nn.Module, label: Optional[int]) -> None:
    """--class K must name a class of a conditional (or InfoGAN categorical) generator."""
    if label is None:
        return
    k = getattr(G, "num_classes", None)
    if not k:
        raise GanforgeError("--class needs a conditional run (model.conditioning) or InfoGAN categories (model.info_cat)")
    if not 0 <= label < k:
        raise GanforgeError(f"--class {label}: this generator has classes 0..{k - 1}")
