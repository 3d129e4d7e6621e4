"""Gradient flow per layer: gradient norm, weight norm and update-to-weight ratio.

Every module that owns parameters is one "layer", named by its path in the network
(`named_modules()`, "root" for the network itself). Keys written to stats.jsonl:

    grad/<G|D>/<layer>    ||dL/dw|| of the layer's own parameters (before clipping)
    weight/<G|D>/<layer>  ||w|| after the optimiser step
    update/<G|D>/<layer>  ||w_after - w_before|| / ||w_before|| for that optimiser step
    grad|weight|update/<G|D>/total   the same over the whole network

The numpy engine (ganforge.backprop) writes the same keys, so reports read both.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn as nn

from .. import stats

Snapshot = dict[str, list[torch.Tensor]]


def _layers(net: nn.Module) -> Iterator[tuple[str, list[torch.nn.Parameter]]]:
    for name, module in net.named_modules():
        params = list(module.parameters(recurse=False))
        if params:
            yield name or "root", params


def _norms(groups: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """{layer: squared norm} -> {prefix/layer: norm} plus prefix/total."""
    out = {f"{prefix}/{name}": sq.sqrt() for name, sq in groups.items()}
    if groups:
        out[f"{prefix}/total"] = torch.stack(list(groups.values())).sum().sqrt()
    return out


def _sq(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.detach().float().pow(2).sum() for t in tensors]).sum()


def layer_grad_norms(net: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The gradient norm of every module that owns parameters, plus the total, as device tensors."""
    groups = {}
    for name, params in _layers(net):
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            groups[name] = _sq(grads)
    return _norms(groups, prefix)


def layer_weight_norms(net: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The parameter norm of every module that owns parameters, plus the total."""
    return _norms({name: _sq(params) for name, params in _layers(net)}, prefix)


def snapshot(net: nn.Module) -> Snapshot:
    """Copies of every layer's parameters, taken just before an optimiser step."""
    return {name: [p.detach().clone() for p in params] for name, params in _layers(net)}


def layer_update_ratios(net: nn.Module, before: Snapshot, prefix: str) -> dict[str, torch.Tensor]:
    """||w_after - w_before|| / ||w_before|| per layer and in total (0/0 is reported as 0)."""
    deltas, weights = {}, {}
    for name, params in _layers(net):
        old = before.get(name)
        if old is None:
            continue
        deltas[name] = _sq([p.detach() - o for p, o in zip(params, old)])
        weights[name] = _sq(old)
    out = {}
    tiny = torch.finfo(torch.float32).tiny
    for name in deltas:
        out[f"{prefix}/{name}"] = deltas[name].sqrt() / weights[name].sqrt().clamp_min(tiny)
    if deltas:
        total_d = torch.stack(list(deltas.values())).sum().sqrt()
        total_w = torch.stack(list(weights.values())).sum().sqrt()
        out[f"{prefix}/total"] = total_d / total_w.clamp_min(tiny)
    return out


def report_before_step(net: nn.Module, phase: str) -> Snapshot:
    """Report grad/<phase>/* (call after backward, before clipping) and snapshot the weights."""
    for name, value in layer_grad_norms(net, f"grad/{phase}").items():
        stats.report(name, value)
    return snapshot(net)


def report_after_step(net: nn.Module, phase: str, before: Snapshot) -> None:
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
