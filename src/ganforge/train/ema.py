"""An exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019), with R3GAN's
ramp of its half-life (train.ema_rampup)."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn


class EMA:
    """ema = decay * ema + (1 - decay) * weight after every G step; buffers (BN statistics) are copied."""

    def __init__(self, G: nn.Module, decay: float) -> None:
        self.decay = decay  # this step's decay
        self.final_decay = decay  # train.ema_decay: where the ramp ends
        self.model = copy.deepcopy(G).eval()
        self.model.requires_grad_(False)

    def ramp(self, fraction: float) -> None:
        """Set the decay whose half-life (in images) is `fraction` (0..1) of train.ema_decay's, as R3GAN ramps it:
        0.5 ** (B / (fraction H)) = final_decay ** (1 / fraction); 0 copies G."""
        self.decay = self.final_decay ** (1.0 / fraction) if fraction > 0 else 0.0

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        for p_ema, p in zip(self.model.parameters(), G.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), G.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)

