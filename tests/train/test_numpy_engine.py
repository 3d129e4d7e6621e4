"""`ganforge train --engine numpy`: the GAN trainer on ganforge.backprop, checked against the torch trainer."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from helpers import tiny_config

from ganforge import stats
from ganforge.backprop import Tensor
from ganforge.config import set_value
from ganforge.run import RunDir, Spec
from ganforge.metrics.modes import toy2d_modes
from ganforge.nets import build_nets
from ganforge.run import load_checkpoint
from ganforge.train import Trainer as NumpyTrainer
from ganforge.config import DATA_RECIPES
from ganforge.train.numpy_engine import build_numpy_nets, to_torch
from ganforge.train.optim import clip_gradients, lr_at, set_lr
from ganforge.run import read_stats


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """numpy's BLAS pool on one thread, as conftest does for torch (2 shared cores: spinning threads thrash)."""
    from threadpoolctl import threadpool_limits

    stats.collect()  # forget what earlier tests reported into the process-wide collector
    with threadpool_limits(1):
        yield


def numpy_config(**sets):
    return tiny_config(**{"train.engine": "numpy", **sets})


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize(
    "spec, arch, sets",
    [
        (Spec("points", (2,)), "mlp", {}),
        (Spec("points", (2,)), "mlp", {"model.depth": 4, "model.g_activation": "relu"}),
        (Spec("image", (1, 28, 28)), "mlp", {"model.depth": 1}),
        (Spec("image", (1, 8, 8)), "dcgan", {}),
        (Spec("image", (1, 28, 28)), "dcgan", {}),
        (Spec("image", (3, 32, 32)), "dcgan", {}),
    ],
)
def test_numpy_nets_have_the_torch_nets_state_dict_and_outputs(spec, arch, sets):
    cfg = tiny_config(**{"model.arch": arch, "model.g_width": 8, "model.d_width": 8, **sets})
    G, D = build_numpy_nets(spec, arch, cfg, np.random.default_rng(0))
    tG, tD = build_nets(spec, cfg.model)
    for mine, theirs in ((G, tG), (D, tD)):
        ours = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        assert ours == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
        theirs.load_state_dict(to_torch(mine.state_dict()))
    z = np.random.default_rng(1).standard_normal((5, cfg.model.z_dim)).astype(np.float32)
    x = G(Tensor(z))  # training mode: BatchNorm on batch statistics, as torch
    tx = tG(torch.from_numpy(z))
    assert x.shape == tx.shape == (5, *spec.shape)
    np.testing.assert_allclose(x.data, tx.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(D(x).data, tD(tx).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(D(x).data, D(x).data[0])  # non-degenerate logits


def test_dcgan_init_follows_the_paper():
    G, D = build_numpy_nets(Spec("image", (1, 28, 28)), "dcgan", tiny_config(), np.random.default_rng(0))
    w = G.net[0].weight.data
    assert 0.018 < w.std() < 0.022 and abs(w.mean()) < 0.002
    bn = G.net[1].weight.data
    assert 0.99 < bn.mean() < 1.01 and bn.std() < 0.03


# --------------------------------------------------------------------------- one trainer step vs torch


@pytest.mark.parametrize(
    "sets",
    [
        {"model.arch": "mlp", "objective.name": "ns", "train.n_dis": 2, "g_optim.clip_norm": 0.5,
         "d_optim.schedule": "cosine", "g_optim.lr": 1e-3},
        {"model.arch": "dcgan", "objective.name": "minimax", "g_optim.name": "rmsprop", "d_optim.name": "sgd",
         "d_optim.momentum": 0.9, "d_optim.lr": 1e-2, "d_optim.clip_value": 0.05, "g_optim.schedule": "step",
         "g_optim.step_size": 1},
    ],
    ids=["mlp-ns-adam-clipnorm-cosine", "dcgan-minimax-rmsprop-sgd-clipvalue"],
)
def test_numpy_steps_match_the_torch_trainer_in_float64_from_identical_weights_batches_and_noise(sets):
    from ganforge.train import Trainer

    steps = 3
    cfg = numpy_config(**{"train.steps": steps, **sets})
    nt = NumpyTrainer(cfg)
    tcfg = cfg.copy()
    set_value(tcfg, "train.engine", "torch")
    tt = Trainer(tcfg)
    tt.G.load_state_dict(to_torch(nt.G.state_dict()))
    tt.D.load_state_dict(to_torch(nt.D.state_dict()))
    # float64 on both sides: Adam divides by sqrt(v), so float32 rounding in nearly-cancelling
    # moments shows up as ~1e-5 weight differences; in float64 any difference is the algorithm's.
    for net in (nt.G, nt.D, tt.G, tt.D):
        net.double()
    rng = np.random.default_rng(5)
    n = steps * (cfg.train.n_dis + 1)
    B = cfg.train.batch_size
    reals = [rng.uniform(-1, 1, (B, *nt.source.spec.shape)) for _ in range(n)]
    zs = [rng.standard_normal((B, cfg.model.z_dim)) for _ in range(n)]
    feed_x, feed_z = iter(reals), iter(zs)
    nt.engine.batch = lambda: (next(feed_x), None)
    nt.engine.noise = lambda k: next(feed_z)
    i, torch_x = 0, iter(reals)
    for step in range(steps):
        nt.train_step()
        # the torch trainer's phase, fed the same real batches and noise
        set_lr(tt.opt_G, lr_at(tcfg.g_optim, step, steps))
        set_lr(tt.opt_D, lr_at(tcfg.d_optim, step, steps))
        for phase in ["D"] * cfg.train.n_dis + ["G"]:
            net, other, opt, ocfg = (tt.D, tt.G, tt.opt_D, tcfg.d_optim) if phase == "D" else (tt.G, tt.D, tt.opt_G, tcfg.g_optim)
            net.requires_grad_(True)
            other.requires_grad_(False)
            opt.zero_grad(set_to_none=True)
            real = next(torch_x) if phase == "D" else real  # G reuses the last D batch (unused by its loss)
            tt.objective.accumulate_gradients(phase, tt.G, tt.D, torch.from_numpy(real), None, torch.from_numpy(zs[i]))
            clip_gradients([p for p in net.parameters() if p.grad is not None], ocfg)
            opt.step()
            i += 1
    assert i == n
    for mine, theirs in ((nt.G, tt.G), (nt.D, tt.D)):
        ref = theirs.state_dict()
        for k, v in mine.state_dict().items():
            t = ref[k].numpy()
            if v.dtype.kind == "f":
                assert v.dtype == t.dtype == np.float64, k
                np.testing.assert_allclose(v, t, rtol=1e-9, atol=1e-12, err_msg=k)
            else:
                np.testing.assert_array_equal(v, t, err_msg=k)
    start = to_torch(build_numpy_nets(nt.source.spec, cfg.model.arch, nt.cfg, np.random.default_rng(cfg.train.seed))[0].state_dict())
    moved = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], tt.G.state_dict()[k])]
    assert moved  # the weights did change: the agreement is not trivial


# --------------------------------------------------------------------------- learning


def test_numpy_mlp_gan_learns_toy2d_ring():
    """Most of 2,500 samples within 3 sigma (0.03) of a mode (the torch toy2d preset: ~60%)."""
    cfg = tiny_config(**{
        "train.engine": "numpy", "data.dataset": "toy2d-ring", "model.arch": "mlp", "model.z_dim": 16,
        "model.g_width": 64, "model.d_width": 64, "train.steps": 5000, "train.batch_size": 128,
        "g_optim.lr": 2e-3, "d_optim.lr": 2e-3, "g_optim.schedule": "cosine", "d_optim.schedule": "cosine",
        "log.grad_every": 10**9,
    })
    t = NumpyTrainer(cfg)
    before = toy2d_modes(t.generate(t.fixed_z), "toy2d-ring")
    while t.step < cfg.train.steps:
        t.train_step()
    x = t.generate(t.fixed_z)
    assert x.shape == (2500, 2)
    m = toy2d_modes(x, "toy2d-ring")
    assert before["high_quality_fraction"] < 0.05
    assert m["high_quality_fraction"] > 0.5, m
    assert m["modes_covered"] == 8, m


# --------------------------------------------------------------------------- the CLI end to end

TINY = ["--batch-size", "8", "--z-dim", "8", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "data.max_items=64", "--set", "log.log_every=2", "--set", "log.grad_every=2", "--quiet", "--no-report"]
CONSTANT_LR = ["--set", "g_optim.schedule=constant", "--set", "d_optim.schedule=constant"]


def _weights(run):
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    return state


def test_cli_numpy_engine_on_digits_writes_a_run_that_ganforge_sample_reads(tmp_path, run_cli):
    from ganforge.nets.load import generate, load_generator

    run = tmp_path / "run"
    code, out, err = run_cli("train", "--engine", "numpy", "--dataset", "digits", "--steps", "4", "--out", run, *TINY)
    assert code == 0, err
    assert (run / "generator.safetensors").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step_0000000.png", "step_0000004.png"]
    assert "engine: numpy" in (run / "config.yaml").read_text() and "arch: dcgan" in (run / "config.yaml").read_text()
    records = read_stats(run / "stats.jsonl")
    assert [r["step"] for r in records] == [2, 4]
    for key in ("loss/D", "loss/G", "D(x)", "D(G(z))", "lr/G", "lr/D", "images_per_s", "diversity",
                "grad/G/net.0", "grad/G/net.1", "grad/G/net.3", "grad/G/total", "grad/D/net.0", "grad/D/net.2",
                "grad/D/total", "weight/G/net.0", "update/D/total"):
        assert key in records[0], key
    assert 0 < records[-1]["D(x)"] < 1 and records[-1]["grad/G/total"] > 0

    # The torch G that `ganforge sample` builds from config.yaml gives the numpy G's images.
    G, cfg = load_generator(run)
    x = generate(G, 16, cfg.model.z_dim, seed=3)
    t = NumpyTrainer(cfg)
    t.resume_from(RunDir(run))
    z = torch.randn(16, cfg.model.z_dim, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_allclose(x.numpy(), t.generate(z), rtol=0, atol=1e-5)
    assert float(x.std()) > 1e-3
    code, out, err = run_cli("sample", "--run", run, "--n", "8", "--out", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").is_file(), err


@pytest.mark.parametrize("dataset, layer", [("toy2d-ring", "net.4"), ("digits", "net.3")])
def test_cli_numpy_stats_keys_match_the_torch_trainer(tmp_path, run_cli, dataset, layer):
    recipe = DATA_RECIPES["numpy"][dataset]  # the torch run gets the numpy engine's recipe, named
    args = ["train", "--dataset", dataset, "--preset", recipe, "--steps", "2", *TINY]
    assert run_cli(*args, "--engine", "numpy", "--out", tmp_path / "np")[0] == 0
    assert run_cli(*args, "--engine", "torch", "--out", tmp_path / "pt")[0] == 0
    a, b = read_stats(tmp_path / "np" / "stats.jsonl")[-1], read_stats(tmp_path / "pt" / "stats.jsonl")[-1]
    assert set(a) == set(b)
    assert f"grad/G/{layer}" in a and "update/D/total" in a and "diversity" in a


@pytest.mark.parametrize("dataset", ["toy2d-ring", "digits"])
def test_cli_numpy_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, run_cli, dataset):
    args = ["train", "--engine", "numpy", "--dataset", dataset, *TINY, "--set", "log.checkpoint_every=3",
            *CONSTANT_LR]  # a cosine schedule (the toy2d recipe's) stretches when --steps grows on resume
    assert run_cli(*args, "--steps", "4", "--out", tmp_path / "a")[0] == 0
    code, out, err = run_cli("train", "--resume", tmp_path / "a", "--steps", "8", "--quiet", "--no-report")
    assert code == 0, err
    assert run_cli(*args, "--steps", "8", "--out", tmp_path / "b")[0] == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a["step"] == b["step"] == 8
    for part in ("G", "D"):
        for k in b[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for part in ("opt_G", "opt_D"):
        for i, s in b[part]["state"].items():
            for k, v in s.items():
                assert torch.equal(v, a[part]["state"][i][k]) if isinstance(v, torch.Tensor) else v == a[part]["state"][i][k]
    assert a["rng"] == b["rng"]
    sa, sb = read_stats(tmp_path / "a" / "stats.jsonl"), read_stats(tmp_path / "b" / "stats.jsonl")
    drop = ("images_per_s",)  # wall-clock; everything else is reproduced exactly
    assert [r["step"] for r in sa] == [2, 4, 6, 8]
    assert [{k: v for k, v in r.items() if k not in drop} for r in sa] == [{k: v for k, v in r.items() if k not in drop} for r in sb]


@pytest.mark.parametrize(
    "argv, named",
    [
        (["--dataset", "cifar10", "--data", "nowhere"], "--dataset cifar10"),
        (["--arch", "resnet"], "--arch resnet"),
        (["--objective", "wgan-gp"], "--objective wgan-gp"),
        (["--device", "cuda"], "--device cuda"),
        (["--set", "train.ema_decay=0.999"], "train.ema_decay"),
        (["--set", "model.spectral_norm_d=true"], "model.spectral_norm_d"),
        (["--set", "model.conditioning=concat"], "model.conditioning"),
        (["--set", "train.diffaugment=translation"], "train.diffaugment"),
        (["--eval-every", "10"], "--eval-every"),
    ],
)
def test_cli_numpy_rejects_what_it_does_not_support_before_making_the_run(tmp_path, run_cli, argv, named):
    code, out, err = run_cli("train", "--engine", "numpy", "--steps", "2", "--out", tmp_path / "run", *argv)
    assert code == 2
    assert named in err and "--engine numpy does not support" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_cli_unknown_engine_lists_the_valid_ones(tmp_path, run_cli):
    code, out, err = run_cli("train", "--engine", "jax", "--steps", "2", "--out", tmp_path / "run")
    assert code == 2 and "unknown engine 'jax'" in err and "numpy, torch" in err
    assert not (tmp_path / "run").exists()


def test_numpy_sampling_and_diversity_probe_leave_batchnorm_statistics_alone():
    from ganforge.alarms import Alarms

    t = NumpyTrainer(numpy_config())  # digits -> dcgan with BatchNorm in G
    t.alarms = Alarms(t.cfg.alarms, None, 0)
    before = t.G.state_dict()
    x = t.generate(t.fixed_z)
    d = t.alarms.measure(t.engine.probe())
    assert x.shape == (t.cfg.log.n_samples, 1, 8, 8) and 0 < d["diversity"] < 10
    after = t.G.state_dict()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def test_example_mlp_gan_numpy_vs_torch_runs_and_plots(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "mlp_gan_numpy_vs_torch.py"
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, str(script), "--steps", "20", "--dataset", "digits", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    png = out / "losses_numpy_vs_torch.png"
    assert png.is_file() and png.stat().st_size > 10_000
    for engine in ("numpy", "torch"):
        records = read_stats(out / engine / "stats.jsonl")
        assert records[-1]["step"] == 20 and np.isfinite(records[-1]["loss/D"])
        assert f"engine: {engine}" in (out / engine / "config.yaml").read_text()
    # same initial weights and data order: the first logged D losses agree closely across engines
    a, b = (read_stats(out / e / "stats.jsonl")[0]["loss/D"] for e in ("numpy", "torch"))
    assert abs(a - b) < 0.05
