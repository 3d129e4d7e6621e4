"""R3GAN's modernised ResNet (Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN!
A Modern GAN Baseline", NeurIPS 2024) for 8x8 to 64x64 images.

No normalisation layer anywhere. Every residual block is an inverted bottleneck, x + branch(x) with
branch = 1x1 conv (x2 channels) -> leaky ReLU -> grouped 3x3 conv (16 channels per group) -> leaky ReLU
-> 1x1 conv back. Fix-up initialisation: each branch's last conv starts at zero (every block is the
identity at init) and its other two convs are scaled by L^(-1/(2m-2)) = L^(-1/4) (L residual blocks in
the net, m = 3 convs per branch). Resampling: nearest up-sampling then the [1, 2, 1] binomial filter in
G, the filter then a 2x2 mean in D; 1x1 convs change the channels between stages.

G: z -> basis (a learnt base x base map, one scale per channel from a linear map of z) -> stages of
(up-sampling transition, 2 blocks) -> 1x1 conv -> tanh. D mirrors it: 1x1 conv from the image -> stages
of (2 blocks, down-sampling transition) -> 2 blocks at base x base -> basis (a depthwise base x base
conv) = features [B, C] -> linear -> logit [B].
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dcgan import _plan

LEAKY = 0.2
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + LEAKY**2))  # He gain of a leaky ReLU of slope 0.2
EXPANSION = 2  # inverted bottleneck: the branch works at 2x the block's channels
GROUP_CHANNELS = 16  # channels per group of the grouped 3x3 conv (the paper's cardinality rule)
BLOCKS_PER_STAGE = 2
BRANCH_CONVS = 3  # m: convs per residual branch, in the fix-up rule L^(-1/(2m-2))
FILTER = (1.0, 2.0, 1.0)


def msr_init_(weight: torch.Tensor, gain: float = 1.0) -> None:
    """He (MSR) initialisation in place: N(0, gain^2 / fan_in), fan_in = inputs per group x kernel area."""
    with torch.no_grad():
        weight.normal_(0.0, gain / math.sqrt(weight[0].numel()))


def fixup_gain(num_blocks: int) -> float:
    """Gain of a branch's first two convs: the leaky-ReLU gain times L^(-1/(2m-2)), L = `num_blocks`."""
    return LEAKY_GAIN * num_blocks ** (-1.0 / (2 * BRANCH_CONVS - 2))


def group_count(channels: int) -> int:
    """Groups of the 3x3 conv: GROUP_CHANNELS channels each (fewer groups when that does not divide)."""
    groups = max(1, channels // GROUP_CHANNELS)
    while channels % groups:
        groups -= 1
    return groups


def stage_widths(width: int, base: int, stages: int) -> list[int]:
    """Channels at resolutions base, 2 base, ..., size: `width` up to 32x32, halved per doubling above
    (the paper's widths: constant up to 32x32, then 1/2, 1/4, ... on FFHQ)."""
    return [max(1, width * min(32, r) // r) for r in (base * 2**i for i in range(stages + 1))]


def lowpass_kernel() -> torch.Tensor:
    """The 2-D binomial low-pass filter outer([1, 2, 1], [1, 2, 1]) / 16: [3, 3], sums to 1."""
    taps = torch.tensor(FILTER)
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    """A bias-free 1x1 conv with He initialisation (transitions, to/from the image)."""
    conv = nn.Conv2d(cin, cout, 1, bias=False)
    msr_init_(conv.weight)
    return conv


class Resample(nn.Module):
    """x2 up-sampling (nearest, then the [1, 2, 1] filter) or down-sampling (the filter, then a 2x2 mean).

    Inside the image this equals R3GAN's interpolative resamplers (zero-stuffed transposed conv or
    stride-2 conv with the [1, 3, 3, 1] kernel = [1, 2, 1] * [1, 1]); at the border the edge is
    replicated instead of zero-padded, so a constant image stays constant.
    """

    def __init__(self, up: bool) -> None:
        super().__init__()
        self.up = up
        self.register_buffer("kernel", lowpass_kernel(), persistent=False)  # fixed, not a weight

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(x.dtype).repeat(c, 1, 1, 1)  # [3, 3] -> [C, 1, 3, 3], one filter per channel
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return self.blur(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # [B, C, 2H, 2W]
        return F.avg_pool2d(self.blur(x), 2)  # [B, C, H/2, W/2]


class InvertedBottleneck(nn.Module):
    """x + conv1x1(lrelu(grouped conv3x3(lrelu(conv1x1(x))))): R3GAN's residual block.

    `num_blocks`: L, the residual blocks of the whole net (fix-up scaling); `fixup=False` gives the last
    conv a non-zero start (spectral norm divides by the weight's norm, which must not be 0).
    """

    def __init__(self, channels: int, num_blocks: int, fixup: bool = True) -> None:
        super().__init__()
        wide = channels * EXPANSION
        self.expand = nn.Conv2d(channels, wide, 1)  # the biases are R3GAN's biased activations
        self.conv = nn.Conv2d(wide, wide, 3, padding=1, groups=group_count(wide))
        self.project = nn.Conv2d(wide, channels, 1, bias=False)
        gain = fixup_gain(num_blocks)
        for conv in (self.expand, self.conv):
            msr_init_(conv.weight, gain)
            nn.init.zeros_(conv.bias)
        if fixup:
            nn.init.zeros_(self.project.weight)
        else:
            msr_init_(self.project.weight, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.expand(x), LEAKY)
        h = F.leaky_relu(self.conv(h), LEAKY)
        return x + self.project(h)


def _blocks(channels: int, num_blocks: int, fixup: bool) -> list[nn.Module]:
    return [InvertedBottleneck(channels, num_blocks, fixup) for _ in range(BLOCKS_PER_STAGE)]


def _transition(cin: int, cout: int, up: bool) -> nn.Sequential:
    """Between stages: G changes channels then up-samples, D down-samples then changes channels."""
    resample: list[nn.Module] = [Resample(up)]
    change: list[nn.Module] = [conv1x1(cin, cout)] if cin != cout else []
    return nn.Sequential(*(change + resample if up else resample + change))


class R3GANGenerator(nn.Module):
    """G(z) -> images [B, C, size, size] in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int = 64, fixup: bool = True) -> None:
        super().__init__()
        self.z_dim = z_dim
        base, stages = _plan(size)
        widths = stage_widths(width, base, stages)
        n = BLOCKS_PER_STAGE * len(widths)
        self.basis = nn.Parameter(torch.randn(widths[0], base, base))
        self.fc = nn.Linear(z_dim, widths[0], bias=False)
        msr_init_(self.fc.weight)
        layers = [nn.Sequential(*_blocks(widths[0], n, fixup))]
        for cin, cout in zip(widths, widths[1:]):
            layers.append(nn.Sequential(_transition(cin, cout, up=True), *_blocks(cout, n, fixup)))
        self.stages = nn.ModuleList(layers)
        self.to_image = conv1x1(widths[-1], channels)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        scale = self.fc(z)[:, :, None, None]  # [B, C0] -> [B, C0, 1, 1]
        h = self.basis[None] * scale  # [1, C0, base, base] * [B, C0, 1, 1] -> [B, C0, base, base]
        for stage in self.stages:
            h = stage(h)
        return torch.tanh(self.to_image(h))  # [B, channels, size, size]


class R3GANDiscriminator(nn.Module):
    """Returns logits [B]; `features(x)` is the basis output [B, F], `logits(h)` the final linear layer."""

    def __init__(self, channels: int, size: int, width: int = 64, fixup: bool = True) -> None:
        super().__init__()
        base, stages = _plan(size)
        widths = stage_widths(width, base, stages)[::-1]  # image resolution first
        n = BLOCKS_PER_STAGE * len(widths)
        self.from_image = conv1x1(channels, widths[0])
        layers = [nn.Sequential(*_blocks(cin, n, fixup), _transition(cin, cout, up=False))
                  for cin, cout in zip(widths, widths[1:])]
        layers.append(nn.Sequential(*_blocks(widths[-1], n, fixup)))
        self.stages = nn.ModuleList(layers)
        c = widths[-1]
        self.basis = nn.Conv2d(c, c, base, groups=c, bias=False)  # depthwise: one base x base pattern per channel
        msr_init_(self.basis.weight)
        self.feature_dim = c
        self.fc = nn.Linear(c, 1, bias=False)
        msr_init_(self.fc.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.from_image(x)
        for stage in self.stages:
            h = stage(h)
        return self.basis(h).flatten(1)  # [B, C, 1, 1] -> [B, C]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(1)  # [B, 1] -> [B]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.logits(self.features(x))
