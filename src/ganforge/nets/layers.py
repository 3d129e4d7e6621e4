"""Layers shared by the architectures: spectral normalisation, conditional batch norm, self-attention."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

SN_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def add_spectral_norm(net: nn.Module, skip: tuple[type, ...] = ()) -> nn.Module:
    """Spectrally normalise (Miyato et al. 2018) every conv, linear and embedding weight of `net` in place.

    Modules inside a `skip` type (e.g. conditional batch norm's gain tables) are left alone.
    """
    skipped = {id(m) for s in net.modules() if isinstance(s, skip) for m in s.modules()}
    for module in list(net.modules()):
        if isinstance(module, SN_TYPES) and id(module) not in skipped:
            spectral_norm(module)
    return net


def has_spectral_norm(net: nn.Module) -> bool:
    return any(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in net.modules())


def default_labels(n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """Balanced labels 0, 1, ..., K-1, 0, 1, ... for a conditional net called without labels."""
    return torch.arange(n, device=device) % num_classes


class Norm2d(nn.Module):
    """BatchNorm2d, or conditional batch norm when `num_classes` is set: per-class gain and bias.

    forward(x, y) ignores y when unconditional.
    """

    def __init__(self, channels: int, num_classes: Optional[int] = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes is None)
        if num_classes is not None:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.bn(x)
        if self.num_classes is None:
            return h
        if y is None:
            y = default_labels(x.shape[0], self.num_classes, x.device)
        g = self.gain(y)[:, :, None, None]  # [B, C] -> [B, C, 1, 1]
        b = self.bias(y)[:, :, None, None]
        return h * g + b


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (Zhang et al. 2019): x + gamma * attention(x), gamma starting at 0."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.theta = nn.Conv2d(channels, inner, 1, bias=False)
        self.phi = nn.Conv2d(channels, inner, 1, bias=False)
        self.g = nn.Conv2d(channels, max(1, channels // 2), 1, bias=False)
        self.out = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [B, c', HW]
        phi = self.phi(x).flatten(2)  # [B, c', HW]
        attn = F.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [B, HW (query), HW (key)]
        g = self.g(x).flatten(2)  # [B, C/2, HW]
        o = (g @ attn.transpose(1, 2)).view(b, -1, h, w)  # [B, C/2, HW] -> [B, C/2, H, W]
        return x + self.gamma * self.out(o)
