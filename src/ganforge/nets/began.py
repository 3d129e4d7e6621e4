"""BEGAN (Berthelot et al. 2017): G is a decoder, D an autoencoder (encoder -> h -> decoder).

Both decoders: linear h -> n x base x base, then per stage two 3x3 conv + ELU and a nearest-neighbour
2x up-sampling, then two conv + ELU and a conv to the image channels (tanh keeps images in [-1, 1]).
The encoder mirrors it with stride-2 convolutions and a linear layer to h. D(x) returns the negative
per-sample L1 reconstruction error (higher = more real) so that it still maps images to [B] scores.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from .dcgan import _plan


def _convs(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, 1, 1), nn.ELU(), nn.Conv2d(cout, cout, 3, 1, 1), nn.ELU()]


class BEGANDecoder(nn.Module):
    def __init__(self, h_dim: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        self.h_dim, self.width = h_dim, width
        self.base, stages = _plan(size)
        self.fc = nn.Linear(h_dim, width * self.base * self.base)
        layers: list[nn.Module] = []
        for _ in range(stages):
            layers += _convs(width, width) + [nn.Upsample(scale_factor=2.0, mode="nearest")]
        layers += _convs(width, width) + [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.width, self.base, self.base)  # [B, h] -> [B, n, base, base]
        return self.net(h)  # [B, C, size, size]


class BEGANEncoder(nn.Module):
    def __init__(self, h_dim: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        base, stages = _plan(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.ELU()]
        ch = width
        for i in range(stages):
            nxt = width * (i + 2)
            layers += [nn.Conv2d(ch, ch, 3, 1, 1), nn.ELU(), nn.Conv2d(ch, nxt, 3, 2, 1), nn.ELU()]  # halves H, W
            ch = nxt
        layers += [nn.Conv2d(ch, ch, 3, 1, 1), nn.ELU()]
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(ch * base * base, h_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x).flatten(1))  # [B, ch, base, base] -> [B, ch*base*base] -> [B, h]


class BEGANDiscriminator(nn.Module):
    """An autoencoder: `reconstruct(x)` -> images; forward(x) -> -E|x - reconstruct(x)| per sample [B]."""

    def __init__(self, h_dim: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        self.encoder = BEGANEncoder(h_dim, channels, size, width)
        self.decoder = BEGANDecoder(h_dim, channels, size, width)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return -(x - self.reconstruct(x)).abs().flatten(1).mean(1)  # [B]
