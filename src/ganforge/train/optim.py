"""Optimisers, learning-rate schedules, R3GAN's ramps and gradient clipping, built from an OptimConfig."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

import torch

from ..config import OptimConfig
from ..errors import unknown_name

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
SCHEDULES = ("constant", "linear", "cosine", "step")


def optimizer_arguments(cfg: OptimConfig) -> tuple[str, dict[str, Any]]:
    """(class name, keyword arguments) of the optimiser `cfg` names: the same for torch.optim and
    ganforge.backprop.optim, whose classes take the same arguments."""
    if cfg.name not in OPTIMIZERS:
        raise unknown_name("optimizer", cfg.name, OPTIMIZERS)
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    return {
        "sgd": ("SGD", {**common, "momentum": cfg.momentum}),
        "adagrad": ("Adagrad", {**common, "eps": cfg.eps}),
        "rmsprop": ("RMSprop", {**common, "alpha": cfg.alpha, "eps": cfg.eps, "momentum": cfg.momentum}),
        "adam": ("Adam", {**common, "betas": cfg.betas, "eps": cfg.eps}),
    }[cfg.name]


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig, fused: bool = False, capturable: bool = False
) -> torch.optim.Optimizer:
    """The torch optimiser `cfg` names. For Adam: `fused` picks the one-kernel update; `capturable` (for CUDA
    graphs) keeps the step count and the learning rate on the device, so a captured step reads them."""
    params = list(params)
    cls, kwargs = optimizer_arguments(cfg)
    if cls == "Adam":
        if capturable:
            kwargs["lr"] = torch.tensor(cfg.lr, dtype=torch.float32, device=params[0].device)
        kwargs.update({"fused": True} if fused else {"foreach": True} if capturable else {})
        kwargs["capturable"] = capturable
    return getattr(torch.optim, cls)(params, **kwargs)


def check_optim(cfg: OptimConfig) -> None:
    if cfg.name not in OPTIMIZERS:
        raise unknown_name("optimizer", cfg.name, OPTIMIZERS)
    if cfg.schedule not in SCHEDULES:
        raise unknown_name("schedule", cfg.schedule, SCHEDULES)


def lr_at(cfg: OptimConfig, step: int, total: int) -> float:
    """The learning rate for update number `step` (0-based) of `total`."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** (step // cfg.step_size)
    frac = min(step / max(total, 1), 1.0)
    low = cfg.min_lr_factor
    if cfg.schedule == "linear":
        return cfg.lr * (1.0 - (1.0 - low) * frac)
    if cfg.schedule == "cosine":
        return cfg.lr * (low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    raise unknown_name("schedule", cfg.schedule, SCHEDULES)


def cosine_ramp(start: float, final: float, step: int, steps: int) -> float:
    """R3GAN's ramp: `start` at step 0 to `final` at step `steps` along half a cosine, then `final`."""
    w = 0.5 * (1.0 - math.cos(math.pi * min(step / max(steps, 1), 1.0)))  # 0 -> 1
    return start * (1.0 - w) + final * w


def set_beta2(opt: torch.optim.Optimizer, beta2: float) -> None:
    """Adam's betas[1] for the next step (R3GAN ramps it: g_optim.beta2_final, d_optim.beta2_final)."""
    for group in opt.param_groups:
        group["betas"] = (group["betas"][0], beta2)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)  # in place: a captured step reads this tensor
        else:
            group["lr"] = lr


SETUP_KEYS = ("fused", "foreach", "capturable")  # how this process runs the update, not what it computes


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict) -> None:
    """Load a saved optimiser state, keeping this process's kernel choices (fused, capturable, lr on device).

    A checkpoint written by a CUDA-graph run on a GPU resumes on a CPU, and the other way round.
    """
    groups = []
    for saved, current in zip(state["param_groups"], opt.param_groups):
        group = {**saved, **{k: current[k] for k in SETUP_KEYS if k in current}}
        group["lr"] = float(saved["lr"])
        groups.append(group)
    opt.load_state_dict({**state, "param_groups": groups})
    for group in opt.param_groups:
        if group.get("capturable"):
            group["lr"] = torch.tensor(group["lr"], dtype=torch.float32, device=group["params"][0].device)


def clip_gradients(params: list[Any], cfg: OptimConfig, utils: Any = torch.nn.utils) -> Optional[Any]:
    """Apply the configured clipping; returns the total norm before clipping when clipping by norm.
    `utils`: torch.nn.utils, or ganforge.backprop.nn for the numpy engine (the same two functions)."""
    norm = None
    if cfg.clip_value is not None:
        utils.clip_grad_value_(params, cfg.clip_value)
    if cfg.clip_norm is not None:
        norm = utils.clip_grad_norm_(params, cfg.clip_norm)
    return norm
