"""The tutorial's MLP GAN: G z -> 128 -> 128 -> pixels (tanh), D pixels -> 128 -> 128 -> 1 logit
(model.depth hidden layers, 2 by default)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn


def _hidden(n_in: int, width: int, depth: int, activation: str = "leaky_relu") -> list[nn.Module]:
    """`depth` hidden layers of `width` units: Linear + LeakyReLU(0.2) (or ReLU) each."""
    layers: list[nn.Module] = []
    for i in range(depth):
        act = nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2)
        layers += [nn.Linear(n_in if i == 0 else width, width), act]
    return layers


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 128, image: bool = True, depth: int = 2,
                 activation: str = "leaky_relu") -> None:
        """`activation` "relu" lets G flatten whole regions of z onto one point (PacGAN's G on the 2-D
        mixtures uses ReLU): the samples between two modes thin out (docs/presets.md)."""
        super().__init__()
        self.z_dim, self.shape = z_dim, tuple(shape)
        self.net = nn.Sequential(
            *_hidden(z_dim, width, depth, activation),
            nn.Linear(width, math.prod(shape)),
            nn.Tanh() if image else nn.Identity(),  # images live in [-1, 1]; points are unbounded
        )

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)  # [B, *shape]


class MLPDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, ...], width: int = 128, depth: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(*_hidden(math.prod(shape), width, depth), nn.Linear(width, 1))
        self.feature_dim = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-1](x.flatten(1))  # [B, prod(shape)] -> [B, width]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.net[-1](h).squeeze(1)  # [B, 1] -> [B]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # [B, prod(shape)] -> [B]
