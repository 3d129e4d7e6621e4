"""Oracles for the numpy engine: torch autograd (float64) and central finite differences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ganforge.backprop import Tensor

TOL_TORCH = 1e-10  # relative error against torch in float64
TOL_FD = 1e-6  # relative error against central differences (h = 1e-6)


def rel_err(a: Any, b: Any) -> float:
    """max |a - b| / max |b| (0 for empty arrays); shapes must agree."""
    a = np.asarray(getattr(a, "data", a), dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _needs_grad(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def check_against_torch(fn_bp: Callable[..., Tensor], fn_torch: Callable[..., Any],
                        arrays: Sequence[np.ndarray], rng: np.random.Generator,
                        tol: float = TOL_TORCH) -> None:
    """Same values and same input gradients (for a random upstream gradient) as torch."""
    import torch
    ours = [Tensor(a, requires_grad=_needs_grad(a)) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=_needs_grad(a)) for a in arrays]
    out, ref = fn_bp(*ours), fn_torch(*theirs)
    assert out.dtype == np.float64 and ref.dtype == torch.float64
    assert out.shape == tuple(ref.shape), (out.shape, tuple(ref.shape))
    assert rel_err(out, ref.detach().numpy()) < tol
    w = rng.standard_normal(out.shape)
    (out * Tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if o.requires_grad:
            assert o.grad is not None, f"no gradient for input {i}"
            err = rel_err(o.grad, t.grad.numpy())
            assert err < tol, f"input {i}: gradient relative error {err:.2e}"


def finite_diff_grads(f: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray],
                      h: float = 1e-6) -> list[np.ndarray]:
    """Central differences (f(x + h) - f(x - h)) / 2h for every element of every array."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = f(arrays)
            a[i] = old - h
            down = f(arrays)
            a[i] = old
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def check_finite_diff(fn_bp: Callable[..., Tensor], arrays: Sequence[np.ndarray],
                      rng: np.random.Generator, tol: float = TOL_FD) -> None:
    """Autograd gradients of sum(w * fn(x)) agree with central differences."""
    arrays = [np.array(a) for a in arrays]
    ins = [Tensor(a, requires_grad=_needs_grad(a)) for a in arrays]
    out = fn_bp(*ins)
    w = rng.standard_normal(out.shape)
    (out * Tensor(w)).sum().backward()

    def f(arrs: list[np.ndarray]) -> float:
        return float(np.sum(fn_bp(*[Tensor(a) for a in arrs]).data * w))

    numeric = finite_diff_grads(f, arrays)
    for i, (t, g) in enumerate(zip(ins, numeric)):
        if t.requires_grad:
            err = rel_err(t.grad, g)
            assert err < tol, f"input {i}: finite-difference relative error {err:.2e}"
