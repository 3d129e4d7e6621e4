"""GAN losses on the numpy engine: pure keyword-only functions of D's logits, with softplus.

The same formulas as ganforge.objectives.losses (mean over the batch):

    D:                 -log D(x) - log(1 - D(G(z)))  = softplus(-real) + softplus(fake)
    G, minimax:         log(1 - D(G(z)))             = -softplus(fake)   (saturates when D wins)
    G, non-saturating: -log D(G(z))                  = softplus(-fake)
"""

from __future__ import annotations

from typing import Callable

from .functional import softplus
from .tensor import Tensor

__all__ = ["gan_d", "minimax_g", "ns_g", "G_LOSSES"]


def gan_d(*, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's loss of the original GAN: -log D(x) - log(1 - D(G(z)))."""
    return softplus(-real_logits).mean() + softplus(fake_logits).mean()


def minimax_g(*, fake_logits: Tensor) -> Tensor:
    """G minimises log(1 - D(G(z))): the saturating loss of the minimax game."""
    return -softplus(fake_logits).mean()


def ns_g(*, fake_logits: Tensor) -> Tensor:
    """G minimises -log D(G(z)): the non-saturating loss."""
    return softplus(-fake_logits).mean()


G_LOSSES: dict[str, Callable[..., Tensor]] = {"ns": ns_g, "minimax": minimax_g}
