"""Small builders shared by tests in several folders (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

from ganforge.config import Config, set_value
from ganforge.run import RunDir
from ganforge.train import Trainer


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
