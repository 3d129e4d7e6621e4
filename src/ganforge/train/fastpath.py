"""Speed choices for the training step, each chosen by a measurement (benchmarks/throughput.py).

`train.precision` (auto | fp32 | bf16) and `train.channels_last` (auto | on | off). On "auto":

- CPU with native bf16 (AVX512-BF16 / AMX, as oneDNN reports it), DCGAN: bf16 autocast for the
  networks + channels_last. Measured on a 2-core AMD EPYC (Zen 4), DCGAN-28 at batch 64: 2.0x the
  float32 step (docs/performance.md). Losses and penalties stay float32 (objectives cast D's logits).
- CUDA, DCGAN: the same bf16 autocast + channels_last (PERF_NOTES: DCGAN-64 at batch 512 went
  from 29.5k to 39.7k-47.8k images/s on an H100).
- CPU, DCGAN, ResNet and R3GAN nets in float32 (no native bf16, or `train.precision fp32`):
  channels_last. Measured on a 2-core AMD EPYC without AVX-512: DCGAN-28 at batch 64 1.15x the
  contiguous step, the demo's ResNet at 8x8 1.05x, stacked R3GAN's 1.10x (`benchmarks/throughput.py
  --setups dcgan28-b64,resnet8-b64,r3gan8-b64 --ablate`, docs/performance.md).
- Everything else (MLPs, toy2d, other architectures): float32, contiguous layout. The MLP nets
  gain nothing, and toy2d's 0.01-wide modes need float32.

`train.fused_optim`: Adam's fused kernel, on by default on every device (CPU, DCGAN-28: the G and
D updates take 0.67 ms instead of 4.1 ms with the default per-parameter loop). `train.tf32`:
TensorFloat-32 for float32 matrix products and convolutions, on by default on CUDA.
`train.cuda_graphs` (train/graphs.py): the whole step captured once as a CUDA graph and replayed,
on by default on CUDA where the step allows it (PERF_NOTES: DCGAN-28 at batch 64 from 7.1 ms to
1.2 ms per step on an H100). `train.compile`: torch.compile of G and D, off on `auto` (measured
slower than eager on an H100 and failing on channels_last convolution backward on torch 2.11);
`on` tries it and falls back to eager with one warning when compilation fails.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ContextManager, Optional

import torch
import torch.nn as nn

from ..config import Config
from ..errors import GanforgeError

log = logging.getLogger("ganforge")

FAST_ARCHS = ("dcgan",)  # architectures whose auto choice was measured to gain
CPU_CHANNELS_LAST_ARCHS = ("dcgan", "resnet", "r3gan")  # float32 on a CPU: channels_last alone measured to gain


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
    fused: bool = False  # Adam's fused kernel
    tf32: bool = False  # TensorFloat-32 on CUDA
    graphs: bool = False  # the whole step as one CUDA graph (train/graphs.py)
    compile: bool = False  # torch.compile of G and D, guarded (Trainer._phase)

    def autocast(self) -> ContextManager:
        """bf16 autocast around the networks' forward passes (a no-op context when off)."""
        if not self.bf16:
            return contextlib.nullcontext()
        # A captured graph must not rely on autocast's cache of cast weights (made outside the graph).
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not self.graphs)

    def prepare(self, *nets: nn.Module) -> None:
        if self.channels_last:
            for net in nets:
                net.to(memory_format=torch.channels_last)
        if self.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch in the layout the networks expect."""
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else ("tf32" if self.tf32 else "float32")]
        parts += [name for name, on in (("channels_last", self.channels_last), ("fused Adam", self.fused),
                                        ("CUDA graphs", self.graphs), ("torch.compile", self.compile)) if on]
        return " + ".join(parts)


def graphs_possible(device: torch.device) -> bool:
    """Whether steps on this device can be captured as CUDA graphs (tests substitute a stand-in)."""
    return device.type == "cuda"


def graph_blocker(cfg: Config, device: torch.device, world: int, objective_blocker: Optional[str]) -> Optional[str]:
    """Why this run's step cannot be captured as one CUDA graph, or None when it can."""
    if not graphs_possible(device):
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if world > 1:
        return "not with several processes (torchrun) yet"
    if cfg.g_optim.name != "adam" or cfg.d_optim.name != "adam":
        return "a captured step needs Adam for G and D (capturable)"
    if cfg.train.compile == "on":
        return "torch.compile (train.compile on) and CUDA graphs are exclusive"
    return objective_blocker


def choose(cfg: Config, device: torch.device, world: int = 1, objective_blocker: Optional[str] = None) -> FastPath:
    """Resolve the train.* speed choices for this run (raises GanforgeError on a request that cannot be met).

    `objective_blocker`: why the objective's step cannot be captured (Objective.graph_blocker), or None.
    """
    t, arch = cfg.train, cfg.model.arch
    if t.precision == "bf16" and not bf16_supported(device):
        raise GanforgeError(f"train.precision bf16: {device.type} here has no native bf16 support (use fp32 or auto)")
    auto_fast = device.type in ("cpu", "cuda") and arch in FAST_ARCHS and bf16_supported(device)
    bf16 = t.precision == "bf16" or (t.precision == "auto" and auto_fast)
    image_net = cfg.data.image_size is not None and arch != "mlp"
    auto_layout = (auto_fast and bf16) or (device.type == "cpu" and arch in CPU_CHANNELS_LAST_ARCHS)
    channels_last = image_net and (t.channels_last == "on" or (t.channels_last == "auto" and auto_layout))
    uses_adam = "adam" in (cfg.g_optim.name, cfg.d_optim.name)
    if t.fused_optim == "on" and not uses_adam:
        raise GanforgeError("train.fused_optim on: the fused kernel is Adam's; neither g_optim nor d_optim is adam")
    fused = uses_adam and t.fused_optim != "off"
    if t.tf32 == "on" and device.type != "cuda":
        raise GanforgeError(f"train.tf32 on: TensorFloat-32 is a CUDA setting, and this run is on {device.type}")
    tf32 = device.type == "cuda" and t.tf32 != "off"
    blocker = graph_blocker(cfg, device, world, objective_blocker)
    if t.cuda_graphs == "on" and blocker:
        raise GanforgeError(f"train.cuda_graphs on: {blocker}")
    graphs = t.cuda_graphs != "off" and blocker is None
    return FastPath(device, bf16, channels_last, fused, tf32, graphs, t.compile == "on")
