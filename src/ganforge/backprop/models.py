"""The GAN networks of ganforge.nets (MLP GAN, DCGAN) rebuilt on the numpy engine.

Every module sits at the same path as in the PyTorch nets, so ``state_dict()`` keys and shapes
are identical (``net.0.weight``, ``net.1.running_mean``, ...): weights move between the two
engines with a plain copy. G is called as G(z), D as D(x) -> raw logits [B].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import init, nn
from .tensor import Tensor

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
           "DCGAN_SIZES", "dcgan_init"]

DCGAN_SIZES = (8, 16, 28, 32, 64)  # as ganforge.nets.dcgan


def _hidden(n_in: int, width: int, depth: int, activation: str, kw: dict[str, Any]) -> list[nn.Module]:
    """`depth` hidden layers of `width` units: Linear + LeakyReLU(0.2) (or ReLU) each (ganforge.nets.mlp)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        act = nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2)
        layers += [nn.Linear(n_in if i == 0 else width, width, **kw), act]
    return layers


class MLPGenerator(nn.Module):
    """The tutorial's G: z -> width -> width -> prod(shape), tanh for images (ganforge.nets.mlp); `depth`
    hidden layers, LeakyReLU(0.2) or ReLU."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], width: int = 128, image: bool = True, *, depth: int = 2,
                 activation: str = "leaky_relu", rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.z_dim, self.shape = z_dim, tuple(shape)
        kw = dict(rng=rng, dtype=dtype)
        self.net = nn.Sequential(
            *_hidden(z_dim, width, depth, activation, kw),
            nn.Linear(width, math.prod(self.shape), **kw),
            nn.Tanh() if image else nn.Identity(),  # images live in [-1, 1]; points are unbounded
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(z.shape[0], *self.shape)  # [B, *shape]


class MLPDiscriminator(nn.Module):
    """The tutorial's D: prod(shape) -> width -> width -> 1 logit (`depth` hidden layers)."""

    def __init__(self, shape: tuple[int, ...], width: int = 128, *, depth: int = 2,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        kw = dict(rng=rng, dtype=dtype)
        self.net = nn.Sequential(*_hidden(math.prod(shape), width, depth, "leaky_relu", kw), nn.Linear(width, 1, **kw))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], -1)).reshape(-1)  # [B, prod(shape)] -> [B, 1] -> [B]


def _plan(size: int) -> tuple[int, int]:
    """(base resolution, stride-2 stages) with base * 2**stages == size (4x4, or 7x7 for 28x28)."""
    if size not in DCGAN_SIZES:
        raise ValueError(f"DCGAN makes {', '.join(map(str, DCGAN_SIZES))}-pixel images, not {size}")
    base = 7 if size % 7 == 0 else 4
    return base, (size // base).bit_length() - 1


def dcgan_init(net: nn.Module, rng: np.random.Generator | None = None) -> None:
    """The paper's initialisation: conv/linear weights N(0, 0.02), BatchNorm scale N(1, 0.02)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            init.normal_(m.weight, 0.0, 0.02, rng=rng)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight, 1.0, 0.02, rng=rng)
            init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z -> base x base map by a transposed conv, then stride-2 transposed convs up to the image."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int = 64, *,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.z_dim = z_dim
        base, stages = _plan(size)
        ch = width * 2 ** (stages - 1)
        kw = dict(rng=rng, dtype=dtype)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False, **kw),  # [B, ch, base, base]
            nn.BatchNorm2d(ch, dtype=dtype),
            nn.ReLU(),
        ]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False, **kw),
                       nn.BatchNorm2d(ch // 2, dtype=dtype), nn.ReLU()]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False, **kw), nn.Tanh()]  # [B, C, size, size]
        self.net = nn.Sequential(*layers)
        dcgan_init(self, rng)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))  # [B, z] -> [B, z, 1, 1] -> [B, C, H, W]


class DCGANDiscriminator(nn.Module):
    """Stride-2 convs down to base x base, then one base x base conv to a logit."""

    def __init__(self, channels: int, size: int, width: int = 64, *,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        base, stages = _plan(size)
        ch = width
        kw = dict(rng=rng, dtype=dtype)
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1, bias=False, **kw), nn.LeakyReLU(0.2)]
        for _ in range(stages - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False, **kw), nn.BatchNorm2d(ch * 2, dtype=dtype),
                       nn.LeakyReLU(0.2)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, base, 1, 0, bias=False, **kw)]  # [B, 1, 1, 1]
        self.net = nn.Sequential(*layers)
        dcgan_init(self, rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)  # [B, 1, 1, 1] -> [B]
