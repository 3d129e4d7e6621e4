"""Small builders shared by tests in several folders (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

from ganforge.config import Config, ObjectiveConfig, OptimConfig, set_value
from ganforge.objectives import build_objective
from ganforge.run import RunDir
from ganforge.train import Trainer
from ganforge.train.optim import build_optimizer


def tiny_config(**sets) -> Config:
    cfg = Config()
    for k, v in {
        "data.dataset": "digits",
        "data.max_items": 64,
        "model.z_dim": 8,
        "model.g_width": 8,
        "model.d_width": 8,
        "train.steps": 6,
        "train.batch_size": 8,
        "log.log_every": 1,
        "log.grad_every": 1,
        "log.sample_every": 100,
        "log.checkpoint_every": 100,
        **sets,
    }.items():
        set_value(cfg, k, v)
    return cfg


def train(cfg, path, resume=False):
    t = Trainer(cfg)
    run = RunDir(path)
    if resume:
        t.resume_from(run)
    else:
        run.create()
    t.train(run)
    return t, run


def train_steps(G, D, real, labels, z_dim, objective="ns", cfg=None, steps=2):
    """Real D and G updates through the objective; returns the named parameters ("G.x", "D.y") before and after."""
    obj = build_objective(ObjectiveConfig(name=objective))
    obj.setup(cfg or Config(), G, D)
    opt_g = build_optimizer(G.parameters(), OptimConfig(lr=1e-3))
    opt_d = build_optimizer(D.parameters(), OptimConfig(lr=1e-3))
    named = [(f"G.{n}", p) for n, p in G.named_parameters()] + [(f"D.{n}", p) for n, p in D.named_parameters()]
    before = {n: p.detach().clone() for n, p in named}
    for _ in range(steps):
        z = torch.randn(real.shape[0], z_dim)
        opt_d.zero_grad()
        G.requires_grad_(False)
        obj.accumulate_gradients("D", G, D, real, labels, z)
        opt_d.step()
        G.requires_grad_(True)
        D.requires_grad_(False)
        opt_g.zero_grad()
        obj.accumulate_gradients("G", G, D, real, labels, z)
        opt_g.step()
        D.requires_grad_(True)
    return before, {n: p.detach() for n, p in named}


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/NAME.py imported as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
