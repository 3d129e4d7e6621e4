"""DCGAN (Radford et al. 2016) for 8x8 to 64x64, grayscale or RGB.

G projects z to a base x base map (4x4, or 7x7 for 28x28) and doubles the resolution with
stride-2 transposed convolutions; D mirrors it. Channel widths halve towards the image.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

DCGAN_SIZES = (8, 16, 28, 32, 64)


def _plan(size: int) -> tuple[int, int]:
    """(base resolution, number of stride-2 stages) so that base * 2**stages == size."""
    base = 7 if size % 7 == 0 else 4
    stages = (size // base).bit_length() - 1
    assert base * 2**stages == size, size
    return base, stages


def dcgan_init(m: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        base, stages = _plan(size)
        ch = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False),  # [B, ch, base, base]
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]  # [B, C, size, size]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))  # [B, z] -> [B, z, 1, 1] -> [B, C, H, W]


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        base, stages = _plan(size)
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(stages - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, base, 1, 0, bias=False)]  # [B, 1, 1, 1]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        self.trunk_shape = (ch, base, base)
        self.feature_dim = ch * base * base

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's output before the last convolution, flattened: [B, ch * base * base]."""
        return self.net[:-1](x).flatten(1)  # [B, ch, base, base] -> [B, F]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.net[-1](h.view(h.shape[0], *self.trunk_shape)).flatten()  # [B, F] -> [B, ch, b, b] -> [B]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x).flatten()  # [B, 1, 1, 1] -> [B]
