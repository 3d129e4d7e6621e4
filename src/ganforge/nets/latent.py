"""Latent-space maths shared by `ganforge sample`, the Python API and the report: noise by seed, the
truncation trick, interpolation paths, InfoGAN code values. Pure tensor functions: no network, no files.

Latents are rows z [N, z_dim] ~ N(0, I). An InfoGAN generator (nets.heads.InfoGenerator) carves its
codes out of the last info_cat + info_cont entries of z; the first z_dim - info_cat - info_cont are noise.
"""

from __future__ import annotations

import math
import operator
from typing import Optional, Sequence

import torch

from ..errors import GanforgeError

CODE_LIMIT = 0.98  # continuous codes are swept over [-0.98, 0.98]: the z entry for a code of +-1 is infinite
MAX_SEED = 2**63 - 1


def seed_noise(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """One N(0, I) row per seed, each drawn by its own torch.Generator, so row i depends on seeds[i]
    alone (not on the other seeds, their number or their order) -> [N, z_dim] on the CPU."""
    rows = [torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows) if rows else torch.empty(0, z_dim)  # [N, z]


def truncate(z: torch.Tensor, psi: float, n_noise: Optional[int] = None) -> torch.Tensor:
    """The truncation trick: z' = mean + psi (z - mean) on the first n_noise entries (default: all).

    The mean latent of z ~ N(0, I) is 0, so z' = psi z: psi 1 leaves z as it is, psi 0 gives the mean
    latent (the "mean image"); in between trades variety for typical samples.
    """
    k = z.shape[1] if n_noise is None else n_noise
    mean = torch.zeros_like(z[:, :k])
    out = z.clone()
    out[:, :k] = mean + psi * (z[:, :k] - mean)
    return out


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between rows of a and b ([R, Z]) at fractions t ([T]) -> [R, T, Z]."""
    t = t[None, :, None]  # [1, T, 1]
    return (1 - t) * a[:, None, :] + t * b[:, None, :]  # [R, T, Z]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b ([R, Z]) at fractions t ([T]) -> [R, T, Z].

    The norm stays near that of Gaussian noise all along (lerp's midpoints dip towards the origin);
    t = 0 and t = 1 give a and b exactly.
    """
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None]  # [R, 1]
    so = torch.sin(omega)
    tt = t[None, :]  # [1, T]
    wa = torch.sin((1 - tt) * omega) / so  # [R, T]
    wb = torch.sin(tt * omega) / so
    z = wa[..., None] * a[:, None, :] + wb[..., None] * b[:, None, :]  # [R, T, Z]
    z = torch.where((t == 0)[None, :, None], a[:, None, :], z)
    return torch.where((t == 1)[None, :, None], b[:, None, :], z)


INTERPOLATIONS = {"slerp": slerp, "lerp": lerp}


def interpolate(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, mode: str = "slerp") -> torch.Tensor:
    """slerp or lerp between rows of a and b ([R, Z]) at fractions t ([T]) -> [R, T, Z]."""
    if mode not in INTERPOLATIONS:
        raise GanforgeError(f"mode={mode!r}: valid modes are {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[mode](a, b, t)


def loop_path(z: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """A closed walk through the rows of z [K, Z]: `steps` points from each row towards the next (the
    last back to the first), each segment's end left to the next one -> [K * steps, Z]."""
    t = torch.arange(steps, dtype=z.dtype) / steps  # [T] in [0, 1)
    return interpolate(z, z.roll(-1, dims=0), t, mode).reshape(-1, z.shape[1])  # [K*T, Z]


def code_to_z(c: torch.Tensor) -> torch.Tensor:
    """The z entry that carries continuous InfoGAN code value c in (-1, 1): InfoGenerator reads erf(z / sqrt 2)."""
    return math.sqrt(2.0) * torch.erfinv(c)


def code_values(steps: int) -> torch.Tensor:
    """`steps` values of a continuous code from -CODE_LIMIT to CODE_LIMIT, for traversals -> [T]."""
    return torch.linspace(-CODE_LIMIT, CODE_LIMIT, steps)


def sweep_codes(z: torch.Tensor, n_cont: int, values: torch.Tensor) -> torch.Tensor:
    """Each continuous code j (the last n_cont entries of z) swept over `values` ([T]) for every row of
    z [R, Z], the other entries kept -> [n_cont * R * T, Z], ordered by code, then row, then value."""
    R, Z = z.shape
    blocks = []
    for j in range(n_cont):
        zj = z[:, None, :].repeat(1, len(values), 1)  # [R, T, Z]
        zj[:, :, Z - n_cont + j] = code_to_z(values)[None, :]
        blocks.append(zj.reshape(R * len(values), Z))
    return torch.cat(blocks) if blocks else z.new_empty(0, Z)


def class_rows(z: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per class of a k-class grid, the same noise z [C, Z] in every row ->
    (latents [k * C, Z], labels [k * C])."""
    cols = z.shape[0]
    return z.repeat(k, 1), torch.arange(k).repeat_interleave(cols)  # [K*C, Z], [K*C]


def check_seeds(seeds: Sequence[int], what: str = "seeds=") -> list[int]:
    """Seeds as a list of ints in [0, 2^63 - 1]; GanforgeError naming `what` otherwise."""
    out = []
    for s in seeds:
        try:
            value = operator.index(s) if not isinstance(s, bool) else None
        except TypeError:
            value = None
        if value is None or not 0 <= value <= MAX_SEED:
            raise GanforgeError(f"{what} {s!r}: seeds are integers from 0 to {MAX_SEED}")
        out.append(value)
    return out


def check_psi(psi: Optional[float], what: str = "truncation=") -> Optional[float]:
    """A truncation psi in [0, 1] (None: off); GanforgeError naming `what` otherwise."""
    if psi is None:
        return None
    try:
        value = float(psi)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise GanforgeError(f"{what} {psi}: psi must be between 0 (the mean image) and 1 (no truncation)")
    return value
