"""Objectives: one class per GAN family owns its D and G passes (forward, loss, backward, stats)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn as nn

from ..config import ObjectiveConfig
from ..registry import Registry
from .. import stats
from . import losses


class Objective:
    """Computes one phase's loss and calls backward; the trainer zeroes, clips and steps."""

    name = "base"

    def __init__(self, cfg: ObjectiveConfig) -> None:
        self.cfg = cfg

    def accumulate_gradients(
        self,
        phase: str,
        G: nn.Module,
        D: nn.Module,
        real: torch.Tensor,
        labels: Optional[torch.Tensor],
        z: torch.Tensor,
    ) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class LogisticGAN(Objective):
    """The original GAN: D maximises log D(x) + log(1 - D(G(z))); G uses `g_loss`."""

    g_loss: Callable[..., torch.Tensor] = staticmethod(losses.ns_g)

    def accumulate_gradients(self, phase, G, D, real, labels, z) -> None:
        if phase == "D":
            with torch.no_grad():
                fake = G(z)
            real_logits, fake_logits = D(real), D(fake)
            loss = losses.gan_d(real_logits=real_logits, fake_logits=fake_logits)
            loss.backward()
            stats.report("loss/D", loss)
            stats.report("D(x)", torch.sigmoid(real_logits.detach()).mean())
            stats.report("D(G(z))", torch.sigmoid(fake_logits.detach()).mean())
        elif phase == "G":
            fake_logits = D(G(z))
            loss = type(self).g_loss(fake_logits=fake_logits)
            loss.backward()
            stats.report("loss/G", loss)
        else:
            raise ValueError(f"unknown phase {phase!r}")


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


@OBJECTIVES.register("ns")
class NonSaturating(LogisticGAN):
    """Non-saturating GAN (Goodfellow et al. 2014, sec. 3): G minimises -log D(G(z))."""

    name = "ns"
    g_loss = staticmethod(losses.ns_g)


@OBJECTIVES.register("minimax")
class Minimax(LogisticGAN):
    """The original minimax GAN: G minimises log(1 - D(G(z))), which saturates when D wins."""

    name = "minimax"
    g_loss = staticmethod(losses.minimax_g)


def build_objective(cfg: ObjectiveConfig) -> Objective:
    return OBJECTIVES.get(cfg.name)(cfg)


__all__ = ["OBJECTIVES", "Objective", "build_objective", "losses"]
