"""Registered generator/discriminator pairs. D always returns raw logits of shape [B]."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..config import ModelConfig
from ..data.base import Spec
from ..errors import GanforgeError
from ..registry import Registry
from .dcgan import DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator

Factory = Callable[[Spec, ModelConfig], tuple[nn.Module, nn.Module]]
ARCHS: Registry[Factory] = Registry("architecture")


def resolve_arch(arch: str, spec: Spec) -> str:
    """'auto' -> dcgan for images, mlp for 2-D points."""
    if arch == "auto":
        return "mlp" if spec.kind == "points" else "dcgan"
    return arch


def build_nets(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for data of `spec`; raises GanforgeError when the architecture cannot make that shape."""
    return ARCHS.get(resolve_arch(cfg.arch, spec))(spec, cfg)


@ARCHS.register("mlp")
def _mlp(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    g = MLPGenerator(cfg.z_dim, spec.shape, cfg.g_width or 128, image=spec.kind == "image")
    d = MLPDiscriminator(spec.shape, cfg.d_width or 128)
    return g, d


@ARCHS.register("dcgan")
def _dcgan(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    if spec.kind != "image":
        raise GanforgeError("architecture 'dcgan' makes images; for 2-D points (toy2d) use --arch mlp")
    c, h, w = spec.shape
    if h != w or h not in DCGAN_SIZES:
        raise GanforgeError(
            f"architecture 'dcgan' cannot make {h}x{w} images; sizes: {', '.join(map(str, DCGAN_SIZES))} "
            f"(set --image-size)"
        )
    return DCGANGenerator(cfg.z_dim, c, h, cfg.g_width or 64), DCGANDiscriminator(c, h, cfg.d_width or 64)


__all__ = ["ARCHS", "build_nets", "resolve_arch", "DCGAN_SIZES"]
