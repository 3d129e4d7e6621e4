"""ganforge.load(RUN) -> Generator: seeds reproducible on any batch, truncation, interpolation, classes,
InfoGAN codes, EMA weights, and what the object says about its generator."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import ganforge
from ganforge.errors import GanforgeError
from ganforge.nets.heads import InfoGenerator
from ganforge.nets.latent import code_to_z, seed_noise
from ganforge.run import load_checkpoint, load_weights
from ganforge.sample import CHUNK, Generator

from api_runs import cgan_run, ema_run, info_run, plain_run  # noqa: F401  (session fixtures)


class _Recorder(nn.Module):
    """Wraps G: records every (z, y) it is called with."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, z, y=None):
        self.calls.append((z.clone(), None if y is None else y.clone()))
        return self.net(z, y)


class _LabelOnly(nn.Module):
    """An 'image' that depends on the label alone: every pixel is y / 10."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        return (y.float() / 10)[:, None, None, None].expand(-1, 1, 8, 8) + 0 * self.dummy


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("threads", [1, 2])
def test_a_seed_gives_the_same_image_alone_and_anywhere_in_a_batch(plain_run, threads):
    torch.set_num_threads(threads)  # the fixture puts 1 back afterwards
    G = ganforge.load(plain_run, device="cpu")
    alone = G.sample(seeds=[42])
    assert alone.shape == (1, 1, 8, 8)
    batch = G.sample(seeds=[3, 9, 1, 0, 42, 7, 5])  # a batch of 7, seed 42 at position 4
    assert torch.equal(alone[0], batch[4])
    big = G.sample(seeds=list(range(100, 100 + CHUNK + 5)) + [42])  # past one chunk, at the end
    assert torch.equal(alone[0], big[-1])
    assert torch.equal(G.sample(5, seed=10), G.sample(seeds=[10, 11, 12, 13, 14]))
    assert torch.equal(G.sample(5, seed=10)[2:], G.sample(3, seed=12))
    assert not torch.equal(batch[0], batch[1])


def test_each_seed_is_its_own_gaussian_noise_fed_to_G(plain_run):
    G = ganforge.load(plain_run, device="cpu")
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7))
    assert torch.equal(seed_noise([7], G.z_dim), z)
    with torch.no_grad():
        want = G.net(z)
    assert torch.allclose(G.sample(seeds=[7]), want, atol=1e-6)


def test_bad_seeds_and_counts_are_one_line_errors(plain_run):
    G = ganforge.load(plain_run, device="cpu")
    for kwargs, words in [({"seeds": [-1]}, "seeds= -1"), ({"seeds": [1.5]}, "seeds= 1.5"), ({"n": 0}, "n= 0"),
                          ({"n": 2, "seeds": [1]}, "disagree"), ({"seed": -3}, "seed= -3")]:
        with pytest.raises(GanforgeError, match=words) as e:
            G.sample(**kwargs)
        assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- truncation


def test_truncation_zero_is_the_mean_image_and_one_is_off(plain_run):
    G = ganforge.load(plain_run, device="cpu")
    mean = G.sample(6, truncation=0.0)
    assert all(torch.equal(mean[0], m) for m in mean)  # every seed: the same image
    with torch.no_grad():
        assert torch.allclose(mean[:1], G.net(torch.zeros(1, G.z_dim)), atol=1e-6)  # G(mean latent = 0)
    assert torch.equal(G.sample(6, truncation=1.0), G.sample(6))
    half = G.sample(seeds=[3], truncation=0.5)
    assert torch.equal(half, G.generate(0.5 * seed_noise([3], G.z_dim)))
    for psi in (-1, 1.5, float("nan")):
        with pytest.raises(GanforgeError, match="truncation="):
            G.sample(2, truncation=psi)


# --------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_interpolation_ends_are_the_two_seeds_samples(plain_run, mode):
    G = ganforge.load(plain_run, device="cpu")
    path = G.interpolate(4, 11, steps=6, mode=mode)
    assert path.shape == (6, 1, 8, 8)
    assert torch.equal(path[0], G.sample(seeds=[4])[0]) and torch.equal(path[-1], G.sample(seeds=[11])[0])
    assert not torch.equal(path[2], path[0]) and not torch.equal(path[2], path[-1])


def test_slerp_and_lerp_differ_between_the_ends_and_bad_modes_are_refused(plain_run):
    G = ganforge.load(plain_run, device="cpu")
    assert not torch.equal(G.interpolate(1, 2, 5)[2], G.interpolate(1, 2, 5, mode="lerp")[2])
    with pytest.raises(GanforgeError, match="valid modes are slerp, lerp"):
        G.interpolate(1, 2, 5, mode="cubic")
    with pytest.raises(GanforgeError, match="steps= 1"):
        G.interpolate(1, 2, 1)


def test_a_walk_passes_through_every_seed_and_loops(plain_run):
    G = ganforge.load(plain_run, device="cpu")
    frames = G.walk([5, 8, 13], steps=4)
    assert frames.shape == (12, 1, 8, 8)
    for i, s in enumerate([5, 8, 13]):
        assert torch.equal(frames[4 * i], G.sample(seeds=[s])[0])


# --------------------------------------------------------------------------- classes


def test_conditional_classes_reach_G(cgan_run):
    real = ganforge.load(cgan_run, device="cpu")
    assert real.classes == 10 and real.class_names == [str(i) for i in range(10)]
    oracle = Generator(_LabelOnly(), real.config)
    assert torch.equal(oracle.sample(4, classes=3), torch.full((4, 1, 8, 8), 0.3))
    assert oracle.sample(classes=[1, 7, 2])[:, 0, 0, 0].tolist() == pytest.approx([0.1, 0.7, 0.2])
    assert oracle.sample(seeds=[0, 13, 27])[:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.3, 0.7])  # seed % 10
    grid = oracle.class_grid([4, 5, 6])
    assert grid[:, 0, 0, 0].tolist() == pytest.approx([k / 10 for k in range(10) for _ in range(3)])
    # the real G gets the same labels: compare with direct calls
    z = seed_noise([21, 22], real.z_dim)
    with torch.no_grad():
        want = real.net(z, torch.tensor([6, 2]))
    assert torch.allclose(real.sample(seeds=[21, 22], classes=[6, 2]), want, atol=1e-6)
    assert not torch.equal(real.sample(seeds=[21], classes=6), real.sample(seeds=[21], classes=2))


def test_bad_classes_say_what_is_valid(cgan_run, plain_run):
    G = ganforge.load(cgan_run, device="cpu")
    with pytest.raises(GanforgeError, match=r"valid values are 0\.\.9"):
        G.sample(classes=10)
    with pytest.raises(GanforgeError, match="one value, or one per sample"):
        G.sample(3, classes=[1, 2])
    with pytest.raises(GanforgeError, match="not conditional"):
        ganforge.load(plain_run, device="cpu").sample(classes=1)
    with pytest.raises(GanforgeError, match="no InfoGAN"):
        G.sample(codes={"cat": 1})


# --------------------------------------------------------------------------- InfoGAN codes


def test_infogan_codes_select_category_and_continuous_values(info_run):
    G = ganforge.load(info_run, device="cpu")
    assert (G.classes, G.info_cat, G.info_cont) == (None, 10, 2) and isinstance(G.net, InfoGenerator)
    rec = _Recorder(G.net)
    R = Generator(rec, G.config)
    x = R.sample(seeds=[1, 2, 3], codes={"cat": [4, 0, 9], "cont": [0.5, None]}, truncation=0.7)
    (z, y), = rec.calls
    z, y = z[:3], y[:3]
    assert y.tolist() == [4, 0, 9]  # the category goes to G as its label
    cat, cont = G.net.codes(z)
    assert torch.allclose(cont[:, 0], torch.full((3,), 0.5), atol=1e-6)
    raw = seed_noise([1, 2, 3], G.z_dim)
    assert torch.equal(z[:, -1], raw[:, -1])  # None: the code z carries, untruncated
    assert torch.allclose(z[:, : G.n_noise], 0.7 * raw[:, : G.n_noise])  # truncation: the noise entries only
    with torch.no_grad():
        assert torch.allclose(x, G.net(z, y), atol=1e-6)
    assert torch.allclose(code_to_z(torch.tensor([0.5])), torch.tensor([0.6744898]), atol=1e-6)  # sqrt(2) erfinv(0.5)


def test_infogan_traversal_rows_and_code_errors(info_run, plain_run):
    G = ganforge.load(info_run, device="cpu")
    x, cols = G.traversal([0], steps=5)
    assert cols == 5 and x.shape == (2 * 10 * 5, 1, 8, 8)  # 2 codes x 10 categories x 5 values
    with pytest.raises(GanforgeError, match="continuous codes lie in"):
        G.sample(codes={"cont": [2.0, 0.0]})
    with pytest.raises(GanforgeError, match=r"codes\['cont'\]: 2 value"):
        G.sample(codes={"cont": [0.1, 0.2, 0.3]})
    with pytest.raises(GanforgeError, match="a dict with 'cat'"):
        G.sample(codes={"category": 1})
    with pytest.raises(GanforgeError, match="needs an InfoGAN run"):
        ganforge.load(plain_run, device="cpu").traversal([0])


# --------------------------------------------------------------------------- weights and description


def test_load_picks_the_ema_weights_when_the_run_kept_them(ema_run, plain_run):
    G = ganforge.load(ema_run, device="cpu")
    ema_weights, meta = load_weights(ema_run / "generator.safetensors")
    live = load_checkpoint(ema_run / "checkpoints" / "last.pt")["G"]
    assert G.ema is True and meta["ema"] == "true" and G.step == 3
    state = G.net.state_dict()
    assert all(torch.equal(state[k], ema_weights[k]) for k in state)
    assert any(not torch.equal(state[k], live[k]) for k in state if state[k].is_floating_point())
    raw = ganforge.load(ema_run, device="cpu", ema=False)
    assert raw.ema is False and all(torch.equal(raw.net.state_dict()[k], live[k]) for k in live)
    assert not torch.equal(raw.sample(seeds=[1]), G.sample(seeds=[1]))
    assert ganforge.load(plain_run, device="cpu").ema is False


def test_the_generator_describes_itself_and_makes_pil_images(plain_run):
    G = ganforge.load(plain_run)  # device auto: the CPU here
    assert (G.image_size, G.channels, G.z_dim, G.classes, G.class_names) == (8, 1, 16, None, None)
    assert G.device.type in ("cpu", "cuda") and G.run_dir == plain_run
    assert "dcgan 1x8x8" in repr(G)
    images = G.to_pil(G.sample(3))
    assert [(im.size, im.mode) for im in images] == [((8, 8), "L")] * 3
    assert len(G.to_pil(G.sample(1)[0])) == 1
    with pytest.raises(GanforgeError, match="to_pil"):
        G.to_pil(torch.zeros(2, 2))


def test_load_errors_name_the_run(tmp_path):
    with pytest.raises(GanforgeError, match="no such run directory"):
        ganforge.load(tmp_path / "nothing")


def test_import_ganforge_is_light_and_train_is_both_subpackage_and_function():
    code = ("import sys, ganforge; assert 'torch' not in sys.modules, 'torch imported'; "
            "import ganforge.train.loop as loop; from ganforge.train import Trainer; "
            "assert callable(ganforge.train) and ganforge.train.Trainer is Trainer; "
            "from ganforge.api import train, load; assert ganforge.load is load; "
            "assert ganforge.Generator.__name__ == 'Generator'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_class_names_come_from_the_data_source(tmp_path):
    from PIL import Image

    from ganforge.config import DataConfig
    from ganforge.sample import dataset_class_names

    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / name / "a.png")
    assert dataset_class_names(DataConfig(dataset="folder", path=str(tmp_path))) == ["cats", "dogs"]
    assert dataset_class_names(DataConfig(dataset="fashion-mnist"))[:2] == ["T-shirt", "Trouser"]
    assert dataset_class_names(DataConfig(dataset="toy2d-ring")) is None
