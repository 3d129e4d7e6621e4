"""R3GAN's ramps (Huang et al. 2024): R1/R2 gamma, the learning rate (the cosine schedule over train.ramp_steps),
Adam's beta2 and the EMA's half-life, each against its formula; resume, CUDA-graph and numpy-engine behaviour."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge import stats
from ganforge.config import Config, set_value, validate
from ganforge.errors import GanforgeError
from ganforge.run import read_stats
from ganforge.train import Trainer, fastpath, graphs
from ganforge.train.numpy_engine import check_numpy_config
from ganforge.train.optim import cosine_ramp, lr_at

from helpers import tiny_config, train

RAMPS = {
    "objective.name": "rpgan",
    "objective.r1.gamma": 2.0, "objective.r1.gamma_final": 0.2,
    "objective.r2.gamma": 2.0, "objective.r2.gamma_final": 0.2,
    "g_optim.betas": [0.0, 0.9], "g_optim.beta2_final": 0.99,
    "d_optim.betas": [0.0, 0.9], "d_optim.beta2_final": 0.99,
    "g_optim.schedule": "cosine", "g_optim.min_lr_factor": 0.25,
    "d_optim.schedule": "cosine", "d_optim.min_lr_factor": 0.25,
    "train.ema_decay": 0.9, "train.ema_rampup": True, "train.ramp_steps": 8,
}


def formula(start: float, final: float, t: int, T: int) -> float:
    """R3GAN's cosine_decay_with_warmup without warm-up: start + (1 - decay) (final - start), held after T."""
    decay = 0.5 * (1 + math.cos(math.pi * min(t, T) / T))
    return start + (1 - decay) * (final - start)


@pytest.mark.parametrize("start, final", [(2.0, 0.2), (0.9, 0.99), (0.0, 1.0), (0.5, 0.5)])
def test_cosine_ramp_at_the_start_midway_the_end_and_after(start, final):
    T = 10
    assert cosine_ramp(start, final, 0, T) == start  # exactly
    assert cosine_ramp(start, final, T, T) == final
    assert cosine_ramp(start, final, 3 * T, T) == final  # held after the ramp
    assert cosine_ramp(start, final, T // 2, T) == pytest.approx((start + final) / 2, rel=1e-12, abs=1e-15)
    for t in range(T + 1):
        assert cosine_ramp(start, final, t, T) == pytest.approx(formula(start, final, t, T), rel=1e-12, abs=1e-15)


def test_the_lr_ramp_is_the_cosine_schedule_over_ramp_steps():
    """R3GAN's lr ramp (2e-4 -> 5e-5) is schedule cosine with min_lr_factor 0.25; train.ramp_steps sets its length."""
    cfg = Config()
    set_value(cfg, "g_optim.schedule", "cosine")
    set_value(cfg, "g_optim.min_lr_factor", 0.25)
    for t, T in ((0, 8), (4, 8), (8, 8), (20, 8)):
        assert lr_at(cfg.g_optim, t, T) == pytest.approx(formula(2e-4, 5e-5, t, T), rel=1e-12)


def test_each_ramp_set_by_the_engine_at_the_start_midway_and_end():
    t = Trainer(tiny_config(**RAMPS))
    T = 10
    for step, r in ((0, 0.0), (5, 0.5), (10, 1.0), (15, 1.0)):
        t.engine.set_schedule(step, T)
        assert t.objective.gamma["r1"] == pytest.approx(2.0 + (0.2 - 2.0) * r, rel=1e-12)
        assert t.objective.gamma["r2"] == pytest.approx(2.0 + (0.2 - 2.0) * r, rel=1e-12)
        for opt in (t.opt_G, t.opt_D):
            assert all(g["betas"] == (0.0, pytest.approx(0.9 + (0.99 - 0.9) * r, rel=1e-12)) for g in opt.param_groups)
        # EMA: the half-life in images is r times that of ema_decay, H = B ln 0.5 / ln 0.9
        B, H = 8, 8 * math.log(0.5) / math.log(0.9)
        expect = 0.5 ** (B / (r * H)) if r > 0 else 0.0
        assert t.ema.decay == pytest.approx(expect, rel=1e-12, abs=1e-300)
    assert t.ema.decay == 0.9 and t.objective.gamma == {"r1": 0.2, "r2": 0.2}  # the end: the final values exactly
    stats.collect()  # (what set_schedule reported: not for the next test's first record)


def test_the_loop_applies_the_ramps_and_reports_them(tmp_path):
    t, run = train(tiny_config(**RAMPS, **{"train.steps": 10}), tmp_path / "run")
    recs = read_stats(run.stats)
    assert [r["step"] for r in recs] == list(range(1, 11))
    for rec in recs:
        s = rec["step"] - 1  # the record of step s+1 holds the values its update (number s) used
        assert rec["ramp/r1_gamma"] == pytest.approx(formula(2.0, 0.2, s, 8), rel=1e-6)
        assert rec["ramp/beta2_D"] == pytest.approx(formula(0.9, 0.99, s, 8), rel=1e-6)
        assert rec["lr/G"] == pytest.approx(formula(2e-4, 5e-5, s, 8), rel=1e-9)
        assert rec["ramp/ema_decay"] == pytest.approx(0.9 ** (1 / formula(0.0, 1.0, s, 8)) if s else 0.0, rel=1e-6)
        assert "penalty/r1" in rec and "penalty/r2" in rec
    assert t.opt_G.param_groups[0]["betas"][1] == pytest.approx(0.99)


def test_a_run_with_rpgan_r1_r2_and_every_ramp_resumes_bit_identically(tmp_path):
    sets = {**RAMPS, "train.n_dis": 2, "log.checkpoint_every": 100}
    straight, _ = train(tiny_config(**sets, **{"train.steps": 10}), tmp_path / "a")
    train(tiny_config(**sets, **{"train.steps": 5}), tmp_path / "b")  # stops mid-ramp (ramp_steps 8)
    resumed, run_b = train(tiny_config(**sets, **{"train.steps": 10}), tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 10
    nets = ("G", "D")
    for a, b in zip([straight.ema.model] + [getattr(straight, n) for n in nets],
                    [resumed.ema.model] + [getattr(resumed, n) for n in nets]):
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(x, y)
    assert straight.opt_D.state_dict()["param_groups"][0]["betas"] == resumed.opt_D.state_dict()["param_groups"][0]["betas"]
    assert [r["step"] for r in read_stats(run_b.stats)] == list(range(1, 11))


def test_ramps_are_off_by_default():
    cfg = Config()
    o = cfg.objective
    assert (o.r2.gamma, o.r1.gamma_final, o.r2.gamma_final, cfg.g_optim.beta2_final, cfg.d_optim.beta2_final) == (0.0, None, None, None, None)
    assert (cfg.train.ema_rampup, cfg.train.ramp_steps) == (False, None)
    t = Trainer(tiny_config(**{"train.ema_decay": 0.9}))
    stats.collect()
    t.engine.set_schedule(3, 10)  # nothing ramps: the configured values stay
    assert not stats.collect()
    assert t.ema.decay == 0.9 and t.opt_G.param_groups[0]["betas"] == (0.5, 0.999) and t.objective.gamma == {"r1": 0.0, "r2": 0.0}


@pytest.mark.parametrize("key, value, match", [
    ("objective.r2.gamma", -1.0, "objective.r2.gamma must be >= 0"),
    ("objective.r2.every", 0, "objective.r2.every must be positive"),
    ("objective.r1.gamma_final", -0.1, "objective.r1.gamma_final must be >= 0"),
    ("objective.r2.gamma_final", -0.1, "objective.r2.gamma_final must be >= 0"),
    ("g_optim.beta2_final", 1.0, r"g_optim.beta2_final must be in \[0, 1\)"),
    ("train.ramp_steps", 0, "train.ramp_steps must be positive"),
    ("train.ema_rampup", True, "train.ema_rampup needs train.ema_decay"),
])
def test_ramp_keys_are_checked(key, value, match):
    cfg = Config()
    set_value(cfg, key, value)
    with pytest.raises(GanforgeError, match=match):
        validate(cfg)


def test_beta2_final_needs_adam():
    cfg = Config()
    set_value(cfg, "d_optim.name", "rmsprop")
    set_value(cfg, "d_optim.beta2_final", 0.99)
    with pytest.raises(GanforgeError, match="d_optim.beta2_final ramps Adam's betas.*'rmsprop', not adam.*beta2_final=null"):
        validate(cfg)


@pytest.mark.parametrize("preset, dataset", [(None, "toy2d-ring"), ("r3gan", "digits")])  # recipes that ramp Adam's beta2
def test_switching_a_recipe_to_another_optimiser_drops_its_adam_ramp_only(preset, dataset):
    from ganforge.config import with_recipe

    def user(names: dict[str, str], **sets: float):
        sets = {"data.dataset": dataset, **{f"{s}.name": n for s, n in names.items()}, **sets}
        return lambda c: [set_value(c, k, v) for k, v in sets.items()]

    cfg = with_recipe(user({"g_optim": "sgd", "d_optim": "sgd"}), preset)
    validate(cfg)
    assert (cfg.g_optim.name, cfg.g_optim.beta2_final, cfg.d_optim.name, cfg.d_optim.beta2_final) == ("sgd", None, "sgd", None)
    cfg = with_recipe(user({"d_optim": "rmsprop"}), preset)  # G stays Adam with its ramp
    assert (cfg.g_optim.beta2_final, cfg.d_optim.beta2_final) == (0.99, None)
    kept = with_recipe(user({}), preset)
    assert kept.g_optim.beta2_final == kept.d_optim.beta2_final == 0.99
    cfg = with_recipe(user({"d_optim": "rmsprop"}, **{"d_optim.beta2_final": 0.95}), preset)  # set by the user: an error
    with pytest.raises(GanforgeError, match="d_optim.beta2_final ramps Adam's betas"):
        validate(cfg)


@pytest.mark.parametrize("key, value", [
    ("objective.r1.gamma_final", 0.1), ("objective.r2.gamma", 1.0), ("objective.r2.gamma_final", 0.1),
    ("g_optim.beta2_final", 0.99), ("d_optim.beta2_final", 0.99),
])
def test_the_numpy_engine_refuses_the_ramps_and_r2(key, value):
    cfg = tiny_config(**{"model.arch": "mlp", "train.engine": "numpy"})
    check_numpy_config(cfg)
    set_value(cfg, key, value)
    with pytest.raises(GanforgeError, match=f"--engine numpy does not support {key}; use --engine torch"):
        check_numpy_config(cfg)
    ramp_only = tiny_config(**{"model.arch": "mlp", "train.engine": "numpy", "train.ramp_steps": 3})
    check_numpy_config(ramp_only)  # the lr schedule's length: supported


@pytest.fixture
def graphs_here(monkeypatch):
    """Let train.cuda_graphs run on this CPU through the EagerReplay stand-in (train/graphs.py)."""
    monkeypatch.setattr(fastpath, "graphs_possible", lambda device: True)


def test_the_ramps_and_lazy_r2_keep_the_step_off_cuda_graphs(graphs_here):
    """A captured step would replay its capture's host values: per-step ramps (and lazy R2) block graphs."""
    with pytest.raises(GanforgeError, match=r"cuda_graphs on: the ramps \(objective.r1.gamma_final, .*train.ema_rampup\)"):
        Trainer(tiny_config(**{**RAMPS, "train.cuda_graphs": "on"}))
    with pytest.raises(GanforgeError, match=r"cuda_graphs on: the ramps \(g_optim.beta2_final\)"):
        Trainer(tiny_config(**{"g_optim.beta2_final": 0.99, "train.cuda_graphs": "on"}))
    with pytest.raises(GanforgeError, match=r"cuda_graphs on: lazy R2 \(objective.r2.every > 1\)"):
        Trainer(tiny_config(**{"objective.r2.gamma": 1.0, "objective.r2.every": 2, "train.cuda_graphs": "on"}))
    assert not Trainer(tiny_config(**RAMPS)).fast.graphs  # auto: eager
    assert Trainer(tiny_config(**{"objective.name": "rpgan", "objective.r2.gamma": 1.0})).fast.graphs


def test_rpgan_with_r1_r2_through_the_graph_plumbing_equals_the_eager_run(tmp_path, graphs_here, monkeypatch):
    """No ramps: rpgan's step (its G phase reads D's real logits) is capturable, reports only tensors, and the
    stand-in's replays give the weights and statistics of the same run with every step eager, exactly."""
    sets = {"objective.name": "rpgan", "objective.r1.gamma": 1.0, "objective.r2.gamma": 1.0, "train.steps": 6,
            "log.grad_every": 3, "train.n_dis": 2, "train.cuda_graphs": "on"}
    graphed, run_g = train(tiny_config(**sets), tmp_path / "graphed")
    with monkeypatch.context() as m:  # graph mode's optimisers and zeroing, every step eager: the oracle
        m.setattr(graphs.StepGraph, "step", lambda self, batches: False)
        eager, run_e = train(tiny_config(**sets), tmp_path / "eager")
    assert isinstance(graphed.graph.backend, graphs.EagerReplay) and not graphed.graph.failed
    for x, y in zip(list(graphed.G.state_dict().values()) + list(graphed.D.state_dict().values()),
                    list(eager.G.state_dict().values()) + list(eager.D.state_dict().values())):
        assert torch.equal(x, y)
    drop = ("images_per_s",)
    recs_g = [{k: v for k, v in r.items() if k not in drop} for r in read_stats(run_g.stats)]
    assert recs_g == [{k: v for k, v in r.items() if k not in drop} for r in read_stats(run_e.stats)]
    assert all({"penalty/r1", "penalty/r2", "D(x)"} <= set(r) for r in recs_g)
