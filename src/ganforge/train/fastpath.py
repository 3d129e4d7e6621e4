"""Speed choices for the training step, each chosen by a measurement (benchmarks/throughput.py).

`train.precision` (auto | fp32 | bf16) and `train.channels_last` (auto | on | off). On "auto":

- CPU with native bf16 (AVX512-BF16 / AMX, as oneDNN reports it), DCGAN: bf16 autocast for the
  networks + channels_last. Measured on a 2-core AMD EPYC (Zen 4), DCGAN-28 at batch 64: 2.0x the
  float32 step (docs/performance.md). Losses and penalties stay float32 (objectives cast D's logits).
- Everything else (MLPs, toy2d, other architectures, CUDA until measured on a lent GPU): float32,
  contiguous layout. The MLP nets gain nothing, and toy2d's 0.01-wide modes need float32.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ContextManager

import torch
import torch.nn as nn

from ..config import Config
from ..errors import GanforgeError

log = logging.getLogger("ganforge")

FAST_ARCHS = ("dcgan",)  # architectures whose auto choice was measured to gain


def bf16_supported(device: torch.device) -> bool:
    """Native bf16 arithmetic on this device (not emulation, which is slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


@dataclass(frozen=True)
class FastPath:
    device: torch.device
    bf16: bool
    channels_last: bool

    def autocast(self) -> ContextManager:
        """bf16 autocast around the networks' forward passes (a no-op context when off)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, *nets: nn.Module) -> None:
        if self.channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch in the layout the networks expect."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else "float32"]
        if self.channels_last:
            parts.append("channels_last")
        return " + ".join(parts)


def choose(cfg: Config, device: torch.device) -> FastPath:
    """Resolve train.precision / train.channels_last for this run (raises GanforgeError on a bad request)."""
    t, arch = cfg.train, cfg.model.arch
    if t.precision == "bf16" and not bf16_supported(device):
        raise GanforgeError(f"train.precision bf16: {device.type} here has no native bf16 support (use fp32 or auto)")
    auto_fast = device.type == "cpu" and arch in FAST_ARCHS and bf16_supported(device)
    bf16 = t.precision == "bf16" or (t.precision == "auto" and auto_fast)
    image_net = cfg.data.image_size is not None and arch != "mlp"
    channels_last = image_net and (t.channels_last == "on" or (t.channels_last == "auto" and auto_fast and bf16))
    return FastPath(device, bf16, channels_last)
