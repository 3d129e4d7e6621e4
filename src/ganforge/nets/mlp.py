"""The tutorial's MLP GAN: G z -> 128 -> 128 -> pixels (tanh), D pixels -> 128 -> 128 -> 1 logit."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 128, image: bool = True) -> None:
        super().__init__()
        self.z_dim, self.shape = z_dim, tuple(shape)
        out = math.prod(shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, out),
            nn.Tanh() if image else nn.Identity(),  # images live in [-1, 1]; points are unbounded
        )

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)  # [B, *shape]


class MLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(math.prod(shape), width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )
        self.feature_dim = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-1](x.flatten(1))  # [B, prod(shape)] -> [B, width]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.net[-1](h).squeeze(1)  # [B, 1] -> [B]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # [B, prod(shape)] -> [B]
