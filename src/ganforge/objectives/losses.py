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


# ----------------------------------------------------------------------------- other families


def wgan_d(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The WGAN critic's loss: E[D(G(z))] - E[D(x)] (it estimates -W1 when D is 1-Lipschitz)."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """The WGAN generator's loss: -E[D(G(z))]."""
    return -fake_logits.mean()


def hinge_d(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The hinge loss of D (Lim & Ye 2017; SNGAN, SAGAN): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's hinge loss: -E[D(G(z))]."""
    return -fake_logits.mean()


def lsgan_d(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN (Mao et al. 2017, a=0, b=1): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return 0.5 * (real_logits - 1.0).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def lsgan_g(*, fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN's generator loss (c=1): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


def rpgan_d(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The relativistic pairing loss of D (Jolicoeur-Martineau 2019; R3GAN): E softplus(-(D(x_i) - D(G(z_i)))),
    real and fake logits paired by batch position ([B] and [B])."""
    return F.softplus(-(real_logits - fake_logits)).mean()


def rpgan_g(*, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The relativistic pairing loss of G: E softplus(-(D(G(z_i)) - D(x_i))), paired as in `rpgan_d`."""
    return F.softplus(-(fake_logits - real_logits)).mean()


def l1_reconstruction(*, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """BEGAN's autoencoder loss L(v) = E|v - D(v)|, per sample: [B, ...] -> [B]."""
    return (x - recon).abs().flatten(1).mean(1)


def class_ce(*, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits [B, K] against integer labels [B] (AC-GAN, InfoGAN's categorical code)."""
    return F.cross_entropy(logits, labels)
