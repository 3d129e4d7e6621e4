"""Wrappers that add labels and extra heads to any registered G/D pair.

- `LabelledGenerator`: cGAN (Mirza & Osindero 2014): a learned label embedding concatenated to z.
- `InfoGenerator`: InfoGAN (Chen et al. 2016) codes carved out of z, so every caller's z ~ N(0, I) works.
- `HeadedDiscriminator`: label pathways into D (cGAN's label planes, the projection discriminator of
  Miyato & Koyama 2018) and heads on D's trunk (AC-GAN's classifier, InfoGAN's Q). `D(x, y)` returns
  logits [B]; `D.forward_aux(x, y)` returns (logits [B], head output [B, A] or None).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import default_labels


class LabelledGenerator(nn.Module):
    """G(z, y) = base([z, embed(y)]), or base(z * embed(y)) with `multiply` (embed_dim = z_dim); y=None
    gives balanced labels 0..K-1."""

    def __init__(self, base: nn.Module, num_classes: int, embed_dim: int, multiply: bool = False) -> None:
        super().__init__()
        self.base, self.num_classes, self.multiply = base, num_classes, multiply
        self.embed = nn.Embedding(num_classes, embed_dim)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if y is None:
            y = default_labels(z.shape[0], self.num_classes, z.device)
        if self.multiply:  # every entry of z is scaled by the label's: G cannot keep the label and drop z
            return self.base(z * self.embed(y))  # [B, z]
        return self.base(torch.cat([z, self.embed(y)], dim=1))  # [B, z + e]


class InfoGenerator(nn.Module):
    """z [B, z_dim] ~ N(0, I) -> [noise, one-hot category, continuous codes] -> base G.

    The last `n_cat + n_cont` entries of z become the codes: the category is the argmax of the
    n_cat entries (uniform over K for Gaussian z), the continuous codes 2 Phi(z) - 1 (uniform on
    [-1, 1]). So training, sample grids and `ganforge sample` all feed plain Gaussian noise.
    `forward(z, y)` with y forces the category (`ganforge sample --class K`).
    """

    def __init__(self, base: nn.Module, z_dim: int, n_cat: int, n_cont: int, noise_std: float = 1.0) -> None:
        super().__init__()
        self.base, self.z_dim, self.n_cat, self.n_cont = base, z_dim, n_cat, n_cont
        self.noise_std = noise_std
        self.n_noise = z_dim - n_cat - n_cont
        self.num_classes = n_cat or None

    def codes(self, z: torch.Tensor) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(category [B] or None, continuous codes [B, n_cont] in [-1, 1] or None) carried by z."""
        n = self.n_noise
        cat = z[:, n : n + self.n_cat].argmax(1) if self.n_cat else None
        cont = torch.erf(z[:, n + self.n_cat :] / math.sqrt(2.0)) if self.n_cont else None
        return cat, cont

    def latent(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        cat, cont = self.codes(z)
        parts = [z[:, : self.n_noise] * self.noise_std]
        if self.n_cat:
            parts.append(F.one_hot(cat if y is None else y, self.n_cat).to(z.dtype))  # [B, K]
        if self.n_cont:
            parts.append(cont)
        return torch.cat(parts, dim=1)  # [B, z_dim]

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.base(self.latent(z, y))


class HeadedDiscriminator(nn.Module):
    """A base D (with `features`, `logits`, `feature_dim`) plus label pathways and heads on its trunk.

    label: "none" | "concat" (one-hot label planes appended to the input) | "projection"
    (logits + <embed(y), features>); aux_dim: size of the head on the trunk (0: none).
    """

    def __init__(self, base: nn.Module, label: str, num_classes: Optional[int], aux_dim: int = 0) -> None:
        super().__init__()
        self.base, self.label, self.num_classes = base, label, num_classes
        self.embed = nn.Embedding(num_classes, base.feature_dim) if label == "projection" else None
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)
        hidden = min(128, max(16, base.feature_dim))
        self.aux = (
            nn.Sequential(nn.Linear(base.feature_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, aux_dim))
            if aux_dim
            else None
        )

    def _input(self, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        if self.label != "concat":
            return x
        onehot = (
            F.one_hot(y, self.num_classes).to(x.dtype)
            if y is not None
            else x.new_zeros(x.shape[0], self.num_classes)
        )  # [B, K]
        if x.ndim == 4:
            onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # [B, K, H, W]
        return torch.cat([x, onehot], dim=1)

    def forward_aux(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        h = self.base.features(self._input(x, y))  # [B, F]
        logits = self.base.logits(h)  # [B]
        if self.embed is not None and y is not None:
            logits = logits + (self.embed(y) * h).sum(1)
        return logits, (self.aux(h) if self.aux is not None else None)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.forward_aux(x, y)[0]


def class_grid_inputs(
    fixed_z: torch.Tensor, num_classes: Optional[int]
) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[int]]:
    """(z, labels, columns) for a sample grid: unconditional -> fixed_z as is; conditional -> one row
    per class, the same noise in every column (column j uses fixed_z[j])."""
    if not num_classes:
        return fixed_z, None, None
    cols = max(1, fixed_z.shape[0] // num_classes)
    z = fixed_z[:cols].repeat(num_classes, 1)  # [K * cols, z]
    y = torch.arange(num_classes, device=fixed_z.device).repeat_interleave(cols)  # [K * cols]
    return z, y, cols
