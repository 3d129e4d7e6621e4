"""Weight initialisation like torch.nn.init, drawing from a seedable numpy Generator."""

from __future__ import annotations

import math

import numpy as np

from .tensor import Tensor

__all__ = ["manual_seed", "get_rng", "calculate_fan_in_and_fan_out", "uniform_", "normal_",
           "zeros_", "ones_", "kaiming_uniform_", "xavier_uniform_"]

_RNG = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the module-level generator used by layers and dropout; returns it."""
    global _RNG
    _RNG = np.random.default_rng(seed)
    return _RNG


def get_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` if given, else the module-level generator."""
    return rng if rng is not None else _RNG


def calculate_fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """torch's rule: fan_in = shape[1] * kernel size, fan_out = shape[0] * kernel size."""
    if len(shape) < 2:
        raise ValueError("fan in/out needs a tensor with at least 2 dims")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0,
             rng: np.random.Generator | None = None) -> Tensor:
    t.data[...] = get_rng(rng).uniform(a, b, t.shape)
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0,
            rng: np.random.Generator | None = None) -> Tensor:
    t.data[...] = get_rng(rng).normal(mean, std, t.shape)
    return t


def zeros_(t: Tensor) -> Tensor:
    t.data[...] = 0
    return t


def ones_(t: Tensor) -> Tensor:
    t.data[...] = 1
    return t


def kaiming_uniform_(t: Tensor, a: float = 0.0, rng: np.random.Generator | None = None) -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky_relu)."""
    fan_in, _ = calculate_fan_in_and_fan_out(t.shape)
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound, rng)


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, rng)
