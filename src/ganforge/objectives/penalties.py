"""Gradient penalties on D: WGAN-GP (Gulrajani et al. 2017), R1 (Mescheder et al. 2018) and R2, its twin on
generated data (R3GAN, Huang et al. 2024).

`score` maps images to D's logits [B]; the penalties keep the graph (create_graph) so that their
gradients reach D's weights through a double backward.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

Score = Callable[[torch.Tensor], torch.Tensor]


def input_gradients(score: Score, x: torch.Tensor) -> torch.Tensor:
    """d sum(score(x)) / dx with the graph kept: [B, ...] (each sample's own gradient, samples are independent)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(score(x).sum(), x, create_graph=True)
    return grad


def gradient_penalty(
    score: Score, real: torch.Tensor, fake: torch.Tensor, alpha: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] on x_hat = alpha real + (1 - alpha) fake, one alpha ~ U(0, 1) per sample."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    a = alpha.view(-1, *([1] * (real.ndim - 1)))  # [B] -> [B, 1, 1, 1]
    x_hat = a * real.detach() + (1 - a) * fake.detach()
    grad = input_gradients(score, x_hat)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


def r1_penalty(score: Score, real: torch.Tensor) -> torch.Tensor:
    """E[||grad D(x)||_2^2] on real data (multiply by gamma / 2)."""
    grad = input_gradients(score, real)
    return grad.flatten(1).pow(2).sum(1).mean()


def r2_penalty(score: Score, fake: torch.Tensor) -> torch.Tensor:
    """E[||grad D(G(z))||_2^2] on generated data (multiply by gamma / 2); `fake` is detached from G."""
    return r1_penalty(score, fake)  # the same zero-centred penalty, at other points
