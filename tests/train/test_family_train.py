"""The GAN family inside the trainer: bit-identical resume with EMA / spectral norm / conditioning /
BEGAN / InfoGAN state, EMA weights exported for sampling, class-conditional grids and `sample --class`."""

import numpy as np
import pytest
import torch

from ganforge.run import read_stats
from ganforge.run import load_checkpoint, load_weights

from helpers import tiny_config
from helpers import train

VARIANTS = {
    "cgan+ema+sn+diffaugment+r1": {"model.conditioning": "concat", "train.ema_decay": 0.9, "model.spectral_norm_d": True,
                                   "model.spectral_norm_g": True, "train.diffaugment": "color,translation,cutout",
                                   "objective.r1.gamma": 1.0, "objective.r1.every": 2},
    "resnet-projection-cbn+attention+hinge": {"model.arch": "resnet", "model.conditioning": "projection",
                                              "model.attention": "auto", "objective.name": "hinge",
                                              "model.spectral_norm_d": True, "train.ema_decay": 0.5},
    "began": {"model.arch": "began", "objective.name": "began", "objective.began.lambda_k": 0.05},
    "infogan+wgan-gp": {"model.info_cat": 3, "model.info_cont": 1, "objective.name": "wgan-gp", "model.arch": "resnet"},
    "acgan+wgan": {"model.conditioning": "acgan", "objective.name": "wgan", "g_optim.name": "rmsprop", "d_optim.name": "rmsprop"},
    "lsgan": {"objective.name": "lsgan"},
}




def tensors(t):
    out = list(t.G.state_dict().values()) + list(t.D.state_dict().values())
    if t.ema is not None:
        out += list(t.ema.state_dict().values())
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resume_is_bit_identical(tmp_path, variant):
    sets = {**VARIANTS[variant], "train.n_dis": 2, "log.sample_every": 3, "log.checkpoint_every": 100}
    straight, _ = train(tiny_config(**sets, **{"train.steps": 6}), tmp_path / "a")
    train(tiny_config(**sets, **{"train.steps": 3}), tmp_path / "b")
    resumed, run_b = train(tiny_config(**sets, **{"train.steps": 6}), tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 6
    a, b = tensors(straight), tensors(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert straight.objective.state_dict() == resumed.objective.state_dict()
    assert [r["step"] for r in read_stats(run_b.stats)] == list(range(1, 7))


def test_began_k_stays_in_0_1_and_m_global_is_logged_every_step(tmp_path):
    cfg = tiny_config(**{"model.arch": "began", "objective.name": "began", "objective.began.lambda_k": 0.5,
                         "train.steps": 12})
    t, run = train(cfg, tmp_path / "r")
    recs = read_stats(run.stats)
    ks = [r["began/k"] for r in recs]
    assert [r["step"] for r in recs] == list(range(1, 13)) and all("began/M_global" in r for r in recs)
    assert all(0.0 <= k <= 1.0 for k in ks)
    assert len(set(ks)) > 2  # the controller moves (and with lambda_k 0.5 it hits a bound)
    assert load_checkpoint(run.last)["objective"]["k"] == t.objective.k == ks[-1]


def test_ema_weights_go_to_generator_safetensors(tmp_path):
    t, run = train(tiny_config(**{"train.ema_decay": 0.8, "train.steps": 4}), tmp_path / "r")
    weights, meta = load_weights(run.generator)
    assert meta["ema"] == "true"
    ema_state, live = t.ema.state_dict(), t.G.state_dict()
    for k, v in weights.items():
        assert torch.equal(v, ema_state[k])
    assert any(not torch.equal(ema_state[k], live[k]) for k in live if live[k].is_floating_point())
    assert "G_ema" in load_checkpoint(run.last)
    # the samples written by `ganforge sample` come from the EMA generator
    from ganforge.nets.load import generate, load_generator

    G, cfg = load_generator(run.path)
    x = generate(G, 5, cfg.model.z_dim, seed=3)
    z = torch.randn(5, cfg.model.z_dim, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(x, t.generate(z), atol=1e-6)


def test_conditional_run_grid_and_sample_class_end_to_end(tmp_path, run_cli):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--preset", "cgan", "--dataset", "digits", "--steps", "3", "--batch-size", "8",
                           "--z-dim", "8", "--set", "model.g_width=8", "--set", "model.d_width=8",
                           "--set", "log.n_samples=20", "--out", out, "--quiet", "--no-report")
    assert code == 0, err
    from PIL import Image

    grid = np.asarray(Image.open(out / "samples" / "step_0000003.png"))
    # 10 classes x 2 columns of 8x8 digits enlarged to 48 px with 2 px gutters
    assert grid.shape[:2] == (10 * 50 + 2, 2 * 50 + 2)
    code, stdout, err = run_cli("sample", "--run", out, "--n", "6", "--class", "7", "--out", tmp_path / "s.npy")
    assert code == 0, err
    x7 = np.load(tmp_path / "s.npy")
    assert x7.shape == (6, 1, 8, 8)
    code, _, _ = run_cli("sample", "--run", out, "--n", "6", "--class", "3", "--out", tmp_path / "t.npy")
    assert code == 0 and not np.allclose(np.load(tmp_path / "t.npy"), x7)  # same noise, another class
    code, _, err = run_cli("sample", "--run", out, "--n", "2", "--class", "10", "--out", tmp_path / "u.npy")
    assert code == 2 and "classes 0..9" in err


def test_sample_class_needs_a_conditional_run(tmp_path, run_cli):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--dataset", "digits", "--steps", "1", "--batch-size", "4", "--z-dim", "8",
                           "--set", "model.g_width=4", "--set", "model.d_width=4", "--out", out, "--quiet", "--no-report")
    assert code == 0, err
    code, _, err = run_cli("sample", "--run", out, "--n", "2", "--class", "1", "--out", tmp_path / "s.npy")
    assert code == 2 and "needs a conditional run" in err


FAMILY = ["dcgan-ns", "wgan", "wgan-gp", "lsgan", "sngan-hinge", "sagan", "began", "infogan", "cgan", "cgan-projection", "acgan"]


@pytest.mark.parametrize("name", FAMILY)
def test_every_family_preset_trains_on_8x8_and_28x28_labelled_data(tmp_path, idx_dir, name):
    """Presets fix no data set: each runs on the 8x8 digits and on 28x28 MNIST files, state in config.yaml."""
    from ganforge.config import apply_dict, get_preset, set_value

    for i, data in enumerate(({"data.dataset": "digits"}, {"data.dataset": "mnist", "data.path": str(idx_dir)})):
        cfg = tiny_config(**{"train.steps": 1, "train.batch_size": 4, "model.g_width": 4, "model.d_width": 4})
        apply_dict(cfg, get_preset(name).overrides)
        for k, v in {**data, "model.z_dim": 16, "log.log_every": 1}.items():
            set_value(cfg, k, v)
        t, run = train(cfg, tmp_path / f"{name}-{i}")
        rec = read_stats(run.stats)[-1]
        assert np.isfinite(rec["loss/D"]) and np.isfinite(rec["loss/G"])
        if cfg.model.conditioning != "none":
            assert t.cfg.model.num_classes == 10
        if cfg.model.attention == "auto":
            assert any(type(m).__name__ == "SelfAttention" for m in t.G.modules())


def test_a_folder_of_class_subfolders_trains_a_conditional_gan(tmp_path, run_cli):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs", "owls"):
        (tmp_path / "pets" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "pets" / cls / f"{i}.png")
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--preset", "acgan", "--dataset", "folder", "--data", tmp_path / "pets", "--image-size", "8",
                           "--steps", "2", "--batch-size", "4", "--z-dim", "8", "--set", "model.g_width=4",
                           "--set", "model.d_width=4", "--set", "log.n_samples=6", "--out", out, "--quiet", "--no-report")
    assert code == 0, err
    from ganforge.config import from_dict, load_yaml

    assert from_dict(load_yaml(out / "config.yaml")).model.num_classes == 3
    grid = np.asarray(Image.open(out / "samples" / "step_0000002.png"))
    assert grid.shape[:2] == (3 * 50 + 2, 2 * 50 + 2)  # one row per class, 6 // 3 columns


def _to_old_layout(data: dict) -> dict:
    """A config.yaml mapping written back in the layout before the objective sections (OLD_KEYS reversed)."""
    from ganforge.config import OLD_KEYS

    for old, new in OLD_KEYS.items():
        *path, leaf = new.split(".")
        section = data
        for p in path:
            section = section[p]
        data["objective"][old.split(".", 1)[1]] = section.pop(leaf)
    for name in ("wgan", "gp", "r1", "ac", "info", "began"):
        rest = data["objective"].pop(name)
        # keys added after the old layout (R3GAN's ramp, AC-GAN's fake_weight), at their defaults
        assert rest in ({}, {"gamma_final": None}, {"fake_weight": 1.0}), rest
    data["objective"].pop("r2")  # added after the old layout, at its defaults
    return data


def test_a_run_written_with_the_old_objective_keys_resumes_bit_identically(tmp_path, run_cli):
    """config.yaml from before the objective sections (objective.n_dis, objective.gp_lambda, ...) still resumes."""
    import yaml

    from ganforge.run import RunDir

    common = ["--preset", "wgan-gp", "--arch", "mlp", "--dataset", "digits", "--batch-size", "8", "--z-dim", "8",
              "--n-dis", "2", "--device", "cpu", "--quiet", "--no-report"]
    for k, v in {"model.g_width": 8, "model.d_width": 8, "data.max_items": 64, "objective.r1.gamma": 0.5,
                 "objective.r1.every": 1, "log.sample_every": 100, "log.checkpoint_every": 100}.items():
        common += ["--set", f"{k}={v}"]
    code, _, err = run_cli("train", *common, "--steps", "4", "--out", tmp_path / "a")
    assert code == 0, err
    code, _, err = run_cli("train", *common, "--steps", "2", "--out", tmp_path / "b")
    assert code == 0, err
    config = tmp_path / "b" / "config.yaml"
    config.write_text(yaml.safe_dump(_to_old_layout(yaml.safe_load(config.read_text())), sort_keys=False))
    assert "gp_lambda: 10.0" in config.read_text() and "n_dis: 2" in config.read_text()

    code, _, err = run_cli("train", "--resume", tmp_path / "b", "--steps", "4", "--quiet", "--no-report")
    assert code == 0, err
    a, b = load_checkpoint(RunDir(tmp_path / "a").last), load_checkpoint(RunDir(tmp_path / "b").last)
    for net in ("G", "D"):
        assert a[net].keys() == b[net].keys()
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    saved = yaml.safe_load(config.read_text())  # written back in the new layout
    assert saved["train"]["n_dis"] == 2 and saved["objective"]["gp"] == {"weight": 10.0} and "n_dis" not in saved["objective"]
