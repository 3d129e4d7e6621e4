"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees.

Real and generated images both pass through the same random policy, so D cannot tell them apart by the
augmentation and G still gets gradients through it. Policies: color (brightness, saturation,
contrast), translation (up to 1/8 of the size, zero padding), cutout (a square of half the size).
Randomness comes from torch's global generator (kept in checkpoints), so resumed runs match.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .errors import GanforgeError


def _color(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gx = (gx + tx + 1).clamp(0, h + 1)
    gy = (gy + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # [B, H+2, W+2, C]
    return padded[gb, gx, gy].permute(0, 3, 1, 2)  # [B, H, W, C] -> [B, C, H, W]


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij"
    )
    gx = (gx + ox - ch // 2).clamp(0, h - 1)
    gy = (gy + oy - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)  # [B, 1, H, W] broadcast over channels


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    for n in names:
        if n not in POLICIES:
            raise GanforgeError(f"DiffAugment: unknown policy '{n}'; valid: {', '.join(sorted(POLICIES))}")
    return names


def diff_augment(x: torch.Tensor, policy: str | list[str]) -> torch.Tensor:
    """Apply the named augmentations, in order, to images [B, C, H, W]; differentiable in x."""
    for name in parse_policy(policy) if isinstance(policy, str) else policy:
        x = POLICIES[name](x)
    return x
