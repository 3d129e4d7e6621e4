"""Registered generator/discriminator pairs. D always returns raw logits of shape [B].

Every G is called as G(z, y=None) and every D as D(x, y=None). `build_nets` adds what the model
config asks for on top of an architecture: labels (cGAN embedding or conditional batch norm in G;
label planes, projection or an AC-GAN head in D), InfoGAN codes and Q head, spectral norm.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch.nn as nn

from ..config import ModelConfig
from ..run.spec import Spec
from ..errors import GanforgeError, unknown_name
from ..registry import Registry
from .began import BEGANDecoder, BEGANDiscriminator
from .dcgan import DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator
from .heads import HeadedDiscriminator, InfoGenerator, LabelledGenerator
from .layers import Norm2d, add_spectral_norm
from .mlp import MLPDiscriminator, MLPGenerator
from .packing import PackedDiscriminator, check_pack_model, packed_spec
from .r3gan import R3GANDiscriminator, R3GANGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator, attention_resolutions

Factory = Callable[[Spec, ModelConfig], tuple[nn.Module, nn.Module]]
ARCHS: Registry[Factory] = Registry("architecture")

CONDITIONING = ("none", "concat", "projection", "acgan")
IMAGE_ARCHS = ("dcgan", "resnet", "began", "r3gan")


def resolve_arch(cfg: ModelConfig, spec: Spec) -> str:
    """The architecture for this data: model.arch, or for 'auto' mlp for 2-D points and model.image_arch
    for images (a preset names the image architecture of its recipe; the data decide)."""
    arch = cfg.arch
    if arch == "auto":
        arch = "mlp" if spec.kind == "points" else cfg.image_arch
    ARCHS.get(arch)  # an unknown name: ValueError listing the valid ones
    return arch


def resolve_labels(cfg: ModelConfig, spec: Spec, dataset: str = "this data set") -> None:
    """Record the data set's number of classes in `cfg` when conditioning is on (GanforgeError if unlabelled)."""
    if cfg.conditioning not in CONDITIONING:
        raise unknown_name("conditioning", cfg.conditioning, CONDITIONING)
    if cfg.conditioning == "none":
        cfg.num_classes = None
        return
    if not spec.num_classes:
        raise GanforgeError(
            f"model.conditioning={cfg.conditioning} needs labelled data, and {dataset} has no labels "
            f"(labelled: digits, mnist, fashion-mnist, cifar10, a folder whose subfolders are classes)"
        )
    cfg.num_classes = spec.num_classes


G_CONDITIONING = ("auto", "embed", "mul", "cbn")


def g_conditioning(arch: str, cfg: ModelConfig) -> str:
    """How labels enter G: none | embed (concatenated to z) | mul (z times a label embedding) | cbn (conditional batch norm)."""
    if cfg.conditioning == "none":
        return "none"
    kind = cfg.g_conditioning
    if kind not in G_CONDITIONING:
        raise unknown_name("model.g_conditioning", kind, G_CONDITIONING)
    if kind == "auto":
        return "cbn" if arch == "resnet" else "embed"
    if kind == "cbn" and arch != "resnet":
        raise GanforgeError(f"model.g_conditioning=cbn needs --arch resnet (the {arch} generator has no conditional batch norm)")
    return kind


def check_combination(arch: str, spec: Spec, cfg: ModelConfig) -> None:
    """Raise GanforgeError for model options that cannot go together."""
    if spec.kind != "image" and arch in IMAGE_ARCHS:
        raise GanforgeError(f"architecture '{arch}' makes images; for 2-D points (toy2d) use --arch mlp")
    if cfg.conditioning != "none" and not cfg.num_classes:
        raise GanforgeError(f"model.conditioning={cfg.conditioning} needs model.num_classes (labelled data)")
    if arch == "began" and (cfg.conditioning != "none" or cfg.info_cat or cfg.info_cont):
        raise GanforgeError("architecture 'began' (an autoencoder D) supports neither conditioning nor InfoGAN codes")
    if (cfg.info_cat or cfg.info_cont) and cfg.conditioning != "none":
        raise GanforgeError("InfoGAN codes (model.info_cat / info_cont) and model.conditioning cannot be combined")
    check_pack_model(arch, cfg)  # PacGAN packs: no labels, codes or autoencoder D
    if cfg.attention is not None and not (cfg.attention == "auto" and arch != "resnet"):  # auto: where there is one
        if arch != "resnet":
            raise GanforgeError(f"model.attention (self-attention) needs --arch resnet, not '{arch}'")
        size = spec.shape[-1]
        valid = attention_resolutions(size) if size in DCGAN_SIZES else []
        if cfg.attention != "auto" and cfg.attention not in valid:
            raise GanforgeError(
                f"model.attention={cfg.attention}: the resnet for {size}x{size} images never has that resolution; "
                f"valid: {', '.join(map(str, valid))} or auto"
            )


def build_nets(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """(G, D) for data of `spec`; raises GanforgeError when the architecture cannot make that shape."""
    arch = resolve_arch(cfg, spec)
    factory = ARCHS.get(arch)
    check_combination(arch, spec, cfg)
    K = cfg.num_classes if cfg.conditioning != "none" else None
    g_kind = g_conditioning(arch, cfg)
    embed_dim = min(cfg.z_dim, 32)
    g_cfg = dataclasses.replace(cfg, z_dim=cfg.z_dim + embed_dim) if g_kind == "embed" else cfg
    G, D = factory(spec, g_cfg)
    if cfg.conditioning == "concat":  # cGAN: D sees one-hot label planes beside the image channels
        d_spec = Spec(spec.kind, (spec.shape[0] + K, *spec.shape[1:]))
        _, D = factory(d_spec, cfg)
    if cfg.pack > 1:  # PacGAN: D built for K*C channels (2K coordinates) judges packs of K samples
        _, D = factory(packed_spec(spec, cfg.pack), cfg)
        D = PackedDiscriminator(D, cfg.pack)
    if g_kind in ("embed", "mul"):
        G = LabelledGenerator(G, K, embed_dim if g_kind == "embed" else cfg.z_dim, multiply=g_kind == "mul")
    if cfg.info_cat or cfg.info_cont:
        G = InfoGenerator(G, cfg.z_dim, cfg.info_cat, cfg.info_cont, cfg.info_noise_std)
    aux = (K if cfg.conditioning == "acgan" else 0) + cfg.info_cat + cfg.info_cont
    if cfg.conditioning != "none" or aux:
        D = HeadedDiscriminator(D, cfg.conditioning if cfg.conditioning in ("concat", "projection") else "none", K, aux)
    if cfg.spectral_norm_d:
        add_spectral_norm(D)
    if cfg.spectral_norm_g:
        add_spectral_norm(G, skip=(Norm2d,))
    return G, D


@ARCHS.register("mlp")
def _mlp(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    g = MLPGenerator(cfg.z_dim, spec.shape, cfg.g_width or 128, image=spec.kind == "image", depth=cfg.depth,
                     activation=cfg.g_activation)
    d = MLPDiscriminator(spec.shape, cfg.d_width or 128, depth=cfg.depth)
    return g, d


def _image_size(arch: str, spec: Spec) -> tuple[int, int]:
    c, h, w = spec.shape
    if h != w or h not in DCGAN_SIZES:
        raise GanforgeError(
            f"architecture '{arch}' cannot make {h}x{w} images; sizes: {', '.join(map(str, DCGAN_SIZES))} "
            f"(set --image-size)"
        )
    return c, h


@ARCHS.register("dcgan")
def _dcgan(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    if spec.kind != "image":
        raise GanforgeError("architecture 'dcgan' makes images; for 2-D points (toy2d) use --arch mlp")
    c, h = _image_size("dcgan", spec)
    return DCGANGenerator(cfg.z_dim, c, h, cfg.g_width or 64), DCGANDiscriminator(c, h, cfg.d_width or 64)


@ARCHS.register("resnet")
def _resnet(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """SNGAN-style residual G and D; SAGAN self-attention at model.attention; CBN in G when conditional."""
    c, h = _image_size("resnet", spec)
    attn: Optional[int] = None
    if cfg.attention == "auto":
        attn = attention_resolutions(h)[-1]
    elif cfg.attention is not None:
        attn = int(cfg.attention)
    cbn = cfg.num_classes if g_conditioning("resnet", cfg) == "cbn" else None
    g = ResNetGenerator(cfg.z_dim, c, h, cfg.g_width or 64, attention=attn, num_classes=cbn)
    return g, ResNetDiscriminator(c, h, cfg.d_width or 64, attention=attn)


@ARCHS.register("began")
def _began(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """BEGAN: decoder G, autoencoder D with a z_dim bottleneck (train with --objective began)."""
    c, h = _image_size("began", spec)
    return BEGANDecoder(cfg.z_dim, c, h, cfg.g_width or 64), BEGANDiscriminator(cfg.z_dim, c, h, cfg.d_width or 64)


@ARCHS.register("r3gan")
def _r3gan(spec: Spec, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """R3GAN's modernised ResNet (Huang et al. 2024): no normalisation, fix-up init; labels: embedding in G, projection D."""
    if spec.kind != "image":
        raise GanforgeError("architecture 'r3gan' makes images; for 2-D points (toy2d) use --arch mlp")
    c, h = _image_size("r3gan", spec)
    g_conditioning("r3gan", cfg)  # cbn: GanforgeError (R3GAN has no normalisation layer to condition)
    # Spectral norm divides a weight by its norm: a zero-initialised (fix-up) last conv would give NaN.
    g = R3GANGenerator(cfg.z_dim, c, h, cfg.g_width or 64, fixup=not cfg.spectral_norm_g)
    return g, R3GANDiscriminator(c, h, cfg.d_width or 64, fixup=not cfg.spectral_norm_d)


__all__ = ["ARCHS", "build_nets", "resolve_arch", "resolve_labels", "DCGAN_SIZES"]
