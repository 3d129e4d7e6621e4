"""Gradient flow per layer: gradient norm, weight norm and update-to-weight ratio.

Every module that owns parameters is one "layer", named by its path in the network
(`named_modules()`, "root" for the network itself); a parametrized weight (spectral norm's
`parametrizations.weight.original`) counts with its layer, so a spectral-normed conv is one layer
whose update ratio is not that of its zero-initialised bias alone. Keys written to stats.jsonl:

    grad/<G|D>/<layer>    ||dL/dw|| of the layer's own parameters (before clipping)
    weight/<G|D>/<layer>  ||w|| after the optimiser step
    update/<G|D>/<layer>  ||w_after - w_before|| / ||w_before|| for that optimiser step (0 if w_before = 0)
    grad|weight|update/<G|D>/total   the same over the whole network

Both engines report through these functions: torch networks as device tensors, the numpy engine's
(ganforge.backprop) as float64 Python floats, so reports read both.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from .. import stats

Snapshot = dict[str, list[Any]]


class _TorchOps:
    """Norms as device tensors (no host sync)."""

    @staticmethod
    def layers(net: nn.Module) -> Iterator[tuple[str, list[Any]]]:
        for name, module in net.named_modules():
            if isinstance(module, parametrize.ParametrizationList):
                continue  # its `original` (e.g. spectral norm's weight) belongs to the layer it parametrizes
            params = list(module.parameters(recurse=False))
            if parametrize.is_parametrized(module):  # [bias, ...] + [weight_orig]: one layer, as without
                params += [p for plist in module.parametrizations.values() for p in plist.parameters(recurse=False)]
            if params:
                yield name or "root", params

    value = staticmethod(lambda p: p.detach())
    copy = staticmethod(lambda p: p.detach().clone())

    @staticmethod
    def sq(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([t.detach().float().pow(2).sum() for t in tensors]).sum()

    sqrt = staticmethod(lambda x: x.sqrt())
    total = staticmethod(lambda squares: torch.stack(squares).sum().sqrt())
    # ||delta|| / ||w_before||, 0 where w_before is all zeros (no host sync)
    ratio = staticmethod(lambda d, w: torch.where(w > 0, d / w.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(d)))


class _NumpyOps:
    """Norms as Python floats in float64 (the numpy engine's parameters: .data and .grad arrays)."""

    @staticmethod
    def layers(net: Any) -> Iterator[tuple[str, list[Any]]]:
        for name, module in net.named_modules():
            params = [p for p in module._parameters.values() if p is not None]
            if params:
                yield name or "root", params

    value = staticmethod(lambda p: p.data)
    copy = staticmethod(lambda p: p.data.copy())

    @staticmethod
    def sq(arrays: list[np.ndarray]) -> float:
        return float(sum(np.square(a, dtype=np.float64).sum() for a in arrays))

    sqrt = staticmethod(lambda x: x ** 0.5)
    total = staticmethod(lambda squares: sum(squares) ** 0.5)
    ratio = staticmethod(lambda d, w: d / w if w > 0 else 0.0)


def _ops(net: Any) -> Any:
    return _TorchOps if isinstance(net, nn.Module) else _NumpyOps


def _layers(net: Any) -> Iterator[tuple[str, list[Any]]]:
    return _ops(net).layers(net)


def _norms(ops: Any, groups: dict[str, Any], prefix: str) -> dict[str, Any]:
    """{layer: squared norm} -> {prefix/layer: norm} plus prefix/total."""
    out = {f"{prefix}/{name}": ops.sqrt(sq) for name, sq in groups.items()}
    if groups:
        out[f"{prefix}/total"] = ops.total(list(groups.values()))
    return out


def layer_grad_norms(net: Any, prefix: str) -> dict[str, Any]:
    """The gradient norm of every module that owns parameters, plus the total."""
    ops = _ops(net)
    groups = {}
    for name, params in ops.layers(net):
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            groups[name] = ops.sq(grads)
    return _norms(ops, groups, prefix)


def layer_weight_norms(net: Any, prefix: str) -> dict[str, Any]:
    """The parameter norm of every module that owns parameters, plus the total."""
    ops = _ops(net)
    return _norms(ops, {name: ops.sq([ops.value(p) for p in params]) for name, params in ops.layers(net)}, prefix)


def snapshot(net: Any) -> Snapshot:
    """Copies of every layer's parameters, taken just before an optimiser step."""
    ops = _ops(net)
    return {name: [ops.copy(p) for p in params] for name, params in ops.layers(net)}


def layer_update_ratios(net: Any, before: Snapshot, prefix: str) -> dict[str, Any]:
    """||w_after - w_before|| / ||w_before|| per layer and in total. A layer whose weights were all zero before
    the step (zero-initialised: R3GAN's fix-up convs, a bias on its own) has no relative update; it counts 0
    rather than the infinity that would raise a false exploding-update alarm at the first logged step."""
    ops = _ops(net)
    deltas, weights = {}, {}
    for name, params in ops.layers(net):
        old = before.get(name)
        if old is None:
            continue
        deltas[name] = ops.sq([ops.value(p) - o for p, o in zip(params, old)])
        weights[name] = ops.sq(old)
    out = {f"{prefix}/{name}": ops.ratio(ops.sqrt(deltas[name]), ops.sqrt(weights[name])) for name in deltas}
    if deltas:
        out[f"{prefix}/total"] = ops.ratio(ops.total(list(deltas.values())), ops.total(list(weights.values())))
    return out


def report_before_step(net: Any, phase: str) -> Snapshot:
    """Report grad/<phase>/* (call after backward, before clipping) and snapshot the weights."""
    for name, value in layer_grad_norms(net, f"grad/{phase}").items():
        stats.report(name, value)
    return snapshot(net)


def report_after_step(net: Any, phase: str, before: Snapshot) -> None:
    """Report weight/<phase>/* and update/<phase>/* (call right after the optimiser step)."""
    for name, value in layer_weight_norms(net, f"weight/{phase}").items():
        stats.report(name, value)
    for name, value in layer_update_ratios(net, before, f"update/{phase}").items():
        stats.report(name, value)


__all__ = [
    "layer_grad_norms",
    "layer_weight_norms",
    "layer_update_ratios",
    "snapshot",
    "report_before_step",
    "report_after_step",
]
