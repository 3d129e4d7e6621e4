"""GAN losses as pure functions of discriminator logits (mean over the batch).

Written with softplus, never log(sigmoid(x)): softplus(-x) = -log sigmoid(x) stays finite for any x.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_d(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss of the original GAN: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_g(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """G minimises log(1 - D(G(z))): the saturating loss of the original minimax game."""
    return -F.softplus(fake_logits).mean()


def ns_g(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """G minimises -log D(G(z)): the non-saturating loss (strong gradients when D wins)."""
    return F.softplus(-fake_logits).mean()
