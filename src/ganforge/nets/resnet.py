"""SNGAN-style ResNet generator and discriminator (Miyato et al. 2018; Gulrajani et al. 2017) for 8x8 to 64x64.

G: z -> linear -> base x base map (4x4, or 7x7 for 28x28) -> up-sampling residual blocks -> BN, ReLU,
conv, tanh. D: an "optimised" first block and down-sampling residual blocks, one block at the base
resolution, ReLU, sum over space, linear. Optional SAGAN self-attention at one feature resolution;
G's batch norms become conditional batch norms when `num_classes` is set.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dcgan import _plan
from .layers import Norm2d, SelfAttention


def sngan_init(m: nn.Module) -> None:
    """SNGAN's initialisation: Xavier-uniform, gain sqrt(2) for the 3x3 convolutions, 1 elsewhere; zero biases."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        gain = math.sqrt(2.0) if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) else 1.0
        nn.init.xavier_uniform_(m.weight, gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def attention_resolutions(size: int) -> list[int]:
    """Feature-map resolutions that both G and D of this size pass through (where self-attention may go)."""
    base, stages = _plan(size)
    return [base * 2**i for i in range(stages)]


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: Optional[int]) -> None:
        super().__init__()
        self.n1 = Norm2d(cin, num_classes)
        self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.n2 = Norm2d(cout, num_classes)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.sc = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        h = F.interpolate(F.relu(self.n1(x, y)), scale_factor=2.0)  # [B, Cin, 2H, 2W]
        h = self.c2(F.relu(self.n2(self.c1(h), y)))
        return h + self.sc(F.interpolate(x, scale_factor=2.0))


class ResNetGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int,
        channels: int,
        size: int,
        width: int = 64,
        attention: Optional[int] = None,
        num_classes: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        base, stages = _plan(size)
        self.base = base
        ch = width * 2 ** (stages - 1)
        self.ch0 = ch
        self.fc = nn.Linear(z_dim, ch * base * base)
        self.attn_at = attention
        self.attn_before = SelfAttention(ch) if attention == base else None
        blocks, attn = [], {}
        res = base
        for i in range(stages):
            blocks.append(GBlock(ch, max(ch // 2, width), num_classes))
            ch = max(ch // 2, width)
            res *= 2
            if attention == res:
                attn[str(i)] = SelfAttention(ch)
        self.blocks = nn.ModuleList(blocks)
        self.attn = nn.ModuleDict(attn)
        self.n_out = nn.BatchNorm2d(ch)
        self.c_out = nn.Conv2d(ch, channels, 3, 1, 1)
        self.apply(sngan_init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.ch0, self.base, self.base)  # [B, z] -> [B, ch, base, base]
        if self.attn_before is not None:
            h = self.attn_before(h)
        for i, block in enumerate(self.blocks):
            h = block(h, y)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return torch.tanh(self.c_out(F.relu(self.n_out(h))))  # [B, C, size, size]


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.first, self.down = first, down
        self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.sc = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # the first block sees the image itself
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)  # [B, C, H/2, W/2]
        s = x
        if self.sc is not None:
            if self.first:  # optimised block: pool, then 1x1 conv
                s = self.sc(F.avg_pool2d(s, 2) if self.down else s)
            else:
                s = self.sc(s)
                s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetDiscriminator(nn.Module):
    """Returns logits [B]; `features(x)` is the trunk's [B, F] output, `logits(h)` the final linear layer."""

    def __init__(self, channels: int, size: int, width: int = 64, attention: Optional[int] = None) -> None:
        super().__init__()
        base, stages = _plan(size)
        ch = width
        blocks: list[nn.Module] = [DBlock(channels, ch, down=True, first=True)]
        res = size // 2
        attn = {}
        if attention == res:
            attn["0"] = SelfAttention(ch)
        for i in range(stages - 1):
            blocks.append(DBlock(ch, ch * 2, down=True))
            ch *= 2
            res //= 2
            if attention == res:
                attn[str(i + 1)] = SelfAttention(ch)
        blocks += [DBlock(ch, ch, down=False), DBlock(ch, ch, down=False)]  # as SNGAN's CIFAR D: two blocks at the end
        self.blocks = nn.ModuleList(blocks)
        self.attn = nn.ModuleDict(attn)
        self.feature_dim = ch
        self.fc = nn.Linear(ch, 1)
        self.apply(sngan_init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return F.relu(h).sum(dim=(2, 3))  # [B, C, base, base] -> [B, C]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(1)  # [B, 1] -> [B]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.logits(self.features(x))
