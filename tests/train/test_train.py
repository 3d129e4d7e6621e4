import json

import pytest
import torch

from ganforge.run import RunDir, read_stats
from ganforge.train import Trainer
from ganforge.run import load_checkpoint, load_weights

from helpers import tiny_config, train


@pytest.mark.parametrize("arch, optimizer", [("dcgan", "adam"), ("mlp", "rmsprop")])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, arch, optimizer):
    sets = {"model.arch": arch, "g_optim.name": optimizer, "d_optim.name": optimizer, "train.n_dis": 2,
            "g_optim.schedule": "step", "g_optim.step_size": 3, "log.sample_every": 3, "log.checkpoint_every": 100}
    straight, _ = train(tiny_config(**sets, **{"train.steps": 10}), tmp_path / "a")
    train(tiny_config(**sets, **{"train.steps": 5}), tmp_path / "b")
    resumed, run_b = train(tiny_config(**sets, **{"train.steps": 10}), tmp_path / "b", resume=True)
    assert resumed.step == straight.step == 10
    for a, b in zip(list(straight.G.state_dict().values()) + list(straight.D.state_dict().values()),
                    list(resumed.G.state_dict().values()) + list(resumed.D.state_dict().values())):
        assert torch.equal(a, b)
    assert [r["step"] for r in read_stats(run_b.stats)] == list(range(1, 11))


def test_run_directory_contents(tmp_path):
    cfg = tiny_config(**{"train.steps": 4, "log.log_every": 2, "log.grad_every": 2, "log.sample_every": 2})
    t, run = train(cfg, tmp_path / "run")
    from ganforge.config import from_dict, load_yaml

    assert from_dict(load_yaml(run.config)) == t.cfg  # the resolved config
    assert t.cfg.data.image_size == 8 and t.cfg.data.channels == 1 and t.cfg.model.arch == "dcgan"
    recs = read_stats(run.stats)
    assert [r["step"] for r in recs] == [2, 4]
    r = recs[-1]
    for key in ("loss/D", "loss/G", "D(x)", "D(G(z))", "lr/G", "lr/D", "images_per_s", "grad/G/total", "grad/D/total"):
        assert key in r, key
    assert 0 < r["D(x)"] < 1 and 0 < r["D(G(z))"] < 1
    layers_g = [k for k in r if k.startswith("grad/G/net.")]
    convs_g = [n for n, m in t.G.named_modules() if list(m.parameters(recurse=False))]
    assert sorted(layers_g) == sorted(f"grad/G/{n}" for n in convs_g)  # every parameterised layer
    assert sorted(p.name for p in run.samples.iterdir()) == ["step_0000000.png", "step_0000002.png", "step_0000004.png"]
    state = load_checkpoint(run.last)
    assert state["step"] == 4 and set(state) >= {"G", "D", "opt_G", "opt_D", "rng", "data", "objective"}
    weights, meta = load_weights(run.generator)
    assert meta["step"] == "4" and torch.equal(weights["net.0.weight"], t.G.state_dict()["net.0.weight"])
    assert not [p for p in run.path.rglob("*") if ".tmp" in p.name]  # no temporary files left


def test_stats_are_valid_json_even_when_training_diverges(tmp_path):
    cfg = tiny_config(**{"g_optim.name": "sgd", "d_optim.name": "sgd", "g_optim.lr": 1e30, "d_optim.lr": 1e30,
                         "model.arch": "mlp", "train.steps": 3, "watchdog.enabled": False})  # no rollback
    _, run = train(cfg, tmp_path / "run")
    lines = run.stats.read_text().splitlines()
    assert len(lines) == 3 and all(isinstance(json.loads(line), dict) for line in lines)


def test_toy2d_ring_actually_learns(tmp_path):
    """Most samples land within 3 sigma of a mode (sigma 0.01), and every mode is reached."""
    from ganforge.cli import build_parser, config_from_args
    from ganforge.data import toy2d_centers

    cfg = config_from_args(build_parser().parse_args(["train", "--preset", "toy2d"]))
    t, _ = train(cfg, tmp_path / "toy")
    x = t.generate(torch.randn(2500, cfg.model.z_dim, generator=torch.Generator().manual_seed(1)))
    centers, sigma = toy2d_centers("toy2d-ring")
    dist, nearest = torch.cdist(x.double(), centers).min(1)
    high_quality = dist < 3 * sigma
    assert high_quality.float().mean() > 0.5
    assert len(nearest[high_quality].unique()) == 8


def test_resume_before_the_first_checkpoint_drops_the_dead_attempts_records(tmp_path):
    """A run killed after writing stats but before its first checkpoint restarts from step 0: its old
    records go, so stats.jsonl holds every step exactly once (found by the SIGKILL loop)."""
    from ganforge.run import read_stats

    cfg = tiny_config(**{"train.steps": 3, "log.checkpoint_every": 100})
    run = RunDir(tmp_path / "r")
    run.create()
    for step in (1, 2):  # what the dead attempt wrote
        run.append_stats({"step": step, "loss/D": 9.0})
    t = Trainer(cfg)
    t.resume_from(run)
    assert t.step == 0 and read_stats(run.stats) == []
    t.train(run)
    assert [r["step"] for r in read_stats(run.stats)] == [1, 2, 3]
