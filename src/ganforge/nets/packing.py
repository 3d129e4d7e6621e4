"""PacGAN packing (Lin, Khetan, Fanti & Oh, NeurIPS 2018): D judges K samples of one kind at once.

`PackedDiscriminator(base, K)` wraps any D built for K times the channels (images: K*C, points: 2K)
and packs on the way in: a batch [B, C, H, W] becomes [B/K, K*C, H, W], pack i holding the
consecutive samples iK .. iK+K-1 concatenated along the channel axis, and D returns one logit per
pack, [B/K]. Callers (objectives, penalties, DiffAugment, the trainer) keep calling D(x) on [B, ...]
batches; the losses average over logits and need no change. model.pack = 1 leaves D unwrapped.

Penalties see per-sample input gradients, i.e. sample i's block of its pack's gradient: R1 is then
the pack-space R1 divided by K, and WGAN-GP (one alpha per sample) pushes every block's norm to 1,
so the packed critic is held block-wise 1-Lipschitz (about sqrt(K) in pack space).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn as nn

from ..config import Config, ModelConfig
from ..errors import GanforgeError
from ..run.spec import Spec


def packed_spec(spec: Spec, pack: int) -> Spec:
    """The shape D sees when it judges `pack` samples at once: K*C channels, or 2K coordinates."""
    c, *rest = spec.shape
    return dataclasses.replace(spec, shape=(pack * c, *rest))  # (C, H, W) -> (K*C, H, W); (2,) -> (2K,)


def pack_batch(x: torch.Tensor, pack: int) -> torch.Tensor:
    """[B, C, ...] -> [B/K, K*C, ...]: K consecutive samples concatenated along the channel axis."""
    b = x.shape[0]
    if b % pack:
        raise GanforgeError(
            f"model.pack={pack}: D got a batch of {b} samples; set train.batch_size to a multiple of model.pack"
        )
    return x.reshape(b // pack, pack * x.shape[1], *x.shape[2:])  # [B, C, ...] -> [B/K, K*C, ...]


class PackedDiscriminator(nn.Module):
    """D(x) on [B, ...] = base(pack_batch(x)): logits [B/K], one per pack of K consecutive samples."""

    def __init__(self, base: nn.Module, pack: int) -> None:
        super().__init__()
        self.base, self.pack = base, pack

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if y is not None:
            raise GanforgeError("model.pack > 1 cannot take labels (a pack's label is ambiguous); set model.pack=1")
        return self.base(pack_batch(x, self.pack))  # [B, ...] -> [B/K]

    def extra_repr(self) -> str:
        return f"pack={self.pack}"


def check_pack_model(arch: str, cfg: ModelConfig) -> None:
    """GanforgeError when model.pack > 1 meets an option whose labels, codes or D a pack makes ambiguous."""
    if cfg.pack == 1:
        return
    if cfg.conditioning != "none":
        raise GanforgeError(
            f"model.pack={cfg.pack} cannot be combined with model.conditioning={cfg.conditioning} "
            f"(a pack's label is ambiguous); set model.pack=1 or model.conditioning=none"
        )
    if cfg.info_cat or cfg.info_cont:
        raise GanforgeError(
            f"model.pack={cfg.pack} cannot be combined with InfoGAN codes (model.info_cat / info_cont: "
            f"a pack's code is ambiguous); set model.pack=1"
        )
    if arch == "began":
        raise GanforgeError(
            f"model.pack={cfg.pack} cannot be used with --arch began (its autoencoder D reconstructs "
            f"single images); set model.pack=1"
        )


def check_pack(cfg: Config) -> None:
    """Checks of model.pack against the rest of the run's config (call before data or networks exist)."""
    pack = cfg.model.pack
    if pack == 1:
        return
    if cfg.train.batch_size % pack:
        raise GanforgeError(
            f"train.batch_size ({cfg.train.batch_size}) must be a multiple of model.pack ({pack}); change either"
        )
    if cfg.train.engine != "torch":
        raise GanforgeError(f"--engine {cfg.train.engine} does not support model.pack > 1; use --engine torch")


__all__ = ["PackedDiscriminator", "check_pack", "check_pack_model", "pack_batch", "packed_spec"]
