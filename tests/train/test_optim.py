import math

import pytest
import torch

from ganforge.config import OptimConfig
from ganforge.train.optim import build_optimizer, clip_gradients, lr_at
from helpers import tiny_config  # noqa: F401  (also used by other test files through helpers)


@pytest.mark.parametrize(
    "name, cls, check",
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 1e-4}),
        ("adagrad", torch.optim.Adagrad, {"eps": 1e-8, "weight_decay": 1e-4}),
        ("rmsprop", torch.optim.RMSprop, {"alpha": 0.99, "momentum": 0.9, "weight_decay": 1e-4}),
        ("adam", torch.optim.Adam, {"betas": (0.5, 0.999), "weight_decay": 1e-4}),
    ],
)
def test_optimizers_are_built_with_their_settings(name, cls, check):
    cfg = OptimConfig(name=name, lr=0.01, momentum=0.9, weight_decay=1e-4)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.01
    for k, v in check.items():
        assert group[k] == v, k


def test_unknown_optimizer_lists_valid():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'.*valid: adagrad, adam, rmsprop, sgd"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(name="adamw"))


def test_schedules_at_known_steps():
    total = 100
    assert lr_at(OptimConfig(lr=1.0), 73, total) == 1.0
    lin = OptimConfig(lr=1.0, schedule="linear", min_lr_factor=0.1)
    assert lr_at(lin, 0, total) == 1.0
    assert lr_at(lin, 50, total) == pytest.approx(0.55, abs=1e-12)
    assert lr_at(lin, 100, total) == pytest.approx(0.1, abs=1e-12)
    cos = OptimConfig(lr=2.0, schedule="cosine")
    assert lr_at(cos, 0, total) == 2.0
    assert lr_at(cos, 25, total) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 4)), abs=1e-12)
    assert lr_at(cos, 50, total) == pytest.approx(1.0, abs=1e-12)
    step = OptimConfig(lr=1.0, schedule="step", step_size=30, gamma=0.1)
    assert [lr_at(step, s, total) for s in (0, 29, 30, 59, 60)] == pytest.approx([1, 1, 0.1, 0.1, 0.01], abs=1e-12)


def test_clip_by_norm_and_by_value():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    norm = clip_gradients([p], OptimConfig(clip_norm=1.0))
    assert norm.item() == pytest.approx(5.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    p.grad = torch.tensor([3.0, -4.0, 0.5, 0.0])
    assert clip_gradients([p], OptimConfig(clip_value=1.0)) is None
    assert p.grad.tolist() == [1.0, -1.0, 0.5, 0.0]
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    assert clip_gradients([p], OptimConfig()) is None  # off by default
    assert p.grad.tolist() == [3.0, 4.0, 0.0, 0.0]


def test_trainer_applies_schedule_and_logs_it(tmp_path):
    from ganforge.run import RunDir, read_stats
    from ganforge.train import Trainer

    cfg = tiny_config(**{"g_optim.schedule": "step", "g_optim.step_size": 2, "g_optim.gamma": 0.5, "d_optim.schedule": "cosine"})
    t = Trainer(cfg)
    run = RunDir(tmp_path / "run")
    run.create()
    t.train(run)
    recs = read_stats(run.stats)
    assert [r["lr/G"] for r in recs] == pytest.approx([lr_at(cfg.g_optim, s, 6) for s in range(6)])
    assert [r["lr/D"] for r in recs] == pytest.approx([lr_at(cfg.d_optim, s, 6) for s in range(6)])
    assert t.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.25)


def test_trainer_clips_d_gradients(tmp_path):
    from ganforge.run import RunDir, read_stats
    from ganforge.train import Trainer

    cfg = tiny_config(**{"d_optim.clip_norm": 1e-3, "d_optim.name": "sgd", "d_optim.lr": 1.0})
    t = Trainer(cfg)
    before = [p.detach().clone() for p in t.D.parameters()]
    run = RunDir(tmp_path / "run")
    run.create()
    t.train(run)
    recs = read_stats(run.stats)
    assert all(r["grad/D/preclip_total"] > 1e-3 for r in recs)  # clipping was active
    # plain SGD with lr 1 and clipped total norm 1e-3 moves D by at most 6 * 1e-3 in total
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(t.D.parameters(), before)))
    assert 1e-4 < moved.item() <= 6e-3 + 1e-6
