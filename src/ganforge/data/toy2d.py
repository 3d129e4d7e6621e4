"""The standard 2-D Gaussian mixtures for measuring mode collapse (VEEGAN, PacGAN)."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from .base import Source, Spec


def toy2d_centers(name: str) -> tuple[torch.Tensor, float]:
    """Mode centres [M, 2] and the per-mode standard deviation of a toy2d mixture."""
    if name == "toy2d-ring":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], dim=1), 0.01  # [8, 2]
    if name == "toy2d-grid":
        v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
        return torch.cartesian_prod(v, v), 0.05  # [25, 2]
    raise ValueError(f"unknown toy2d mixture '{name}'")


class Toy2dSource(Source):
    """An endless stream of points: a uniformly chosen mode plus isotropic Gaussian noise."""

    def __init__(self, name: str, seed: int, device: torch.device) -> None:
        self.name = name
        centers, self.sigma = toy2d_centers(name)
        self.centers = centers.float()
        self.spec = Spec(kind="points", shape=(2,), num_classes=None)
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device

    def __len__(self) -> int:
        return 100_000  # nominal: the mixture is sampled afresh each batch

    def batch(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        k = torch.randint(len(self.centers), (n,), generator=self.gen)
        x = self.centers[k] + self.sigma * torch.randn(n, 2, generator=self.gen)  # [n, 2]
        return x.to(self.device), None

    def shard(self, rank: int, world: int, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(seed + 7919 * rank)  # an independent stream per rank

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
