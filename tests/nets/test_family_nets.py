"""ResNet / self-attention / spectral norm / conditioning / InfoGAN / BEGAN nets: shapes, one real
training step each, and every bad combination as a clear error (CLI exit 2, no run directory)."""


import dataclasses

import pytest
import torch

from ganforge.config import Config, ModelConfig
from ganforge.errors import GanforgeError
from ganforge.run import Spec
from ganforge.nets import DCGAN_SIZES, build_nets
from ganforge.nets.heads import InfoGenerator, class_grid_inputs
from ganforge.nets.layers import SelfAttention, has_spectral_norm
from ganforge.nets.resnet import attention_resolutions
from helpers import train_steps


def assert_all_updated(before, after):
    still = [n for n in before if torch.equal(before[n], after[n])]
    assert still == [], f"{len(still)} parameters never moved: {still[:3]}"
    assert all(torch.isfinite(a).all() for a in after.values())


@pytest.mark.parametrize("size, channels", [(s, 1) for s in DCGAN_SIZES] + [(32, 3)])
def test_resnet_every_size_shapes_and_training_steps(size, channels):
    torch.manual_seed(0)
    spec = Spec("image", (channels, size, size))
    G, D = build_nets(spec, ModelConfig(arch="resnet", z_dim=8, g_width=4, d_width=4))
    x = G(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (3,)
    # (ns, not hinge: with every logit inside the hinge margin the final bias gets exactly zero gradient)
    before, after = train_steps(G, D, torch.rand(3, channels, size, size) * 2 - 1, None, 8, "ns")
    assert_all_updated(before, after)


@pytest.mark.parametrize("size", [8, 28, 32])
def test_self_attention_at_every_valid_resolution(size):
    torch.manual_seed(0)
    for res in attention_resolutions(size):
        G, D = build_nets(Spec("image", (1, size, size)), ModelConfig(arch="resnet", z_dim=8, g_width=8, d_width=8, attention=res))
        sa = [m for m in list(G.modules()) + list(D.modules()) if isinstance(m, SelfAttention)]
        assert len(sa) == 2  # one in G, one in D
        before, after = train_steps(G, D, torch.rand(2, 1, size, size) * 2 - 1, None, 8, "ns", steps=2)
        assert_all_updated(before, after)  # gamma moves at step 1, the attention convs from step 2


def test_self_attention_matches_a_direct_computation():
    torch.manual_seed(0)
    sa = SelfAttention(8).double()
    with torch.no_grad():
        sa.gamma.fill_(0.7)
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    out = sa(x)
    for b in range(2):
        feats = x[b].reshape(8, 9)  # [C, N]
        th = sa.theta.weight.view(1, 8) @ feats  # [1, N]
        ph = sa.phi.weight.view(1, 8) @ feats
        g = sa.g.weight.view(4, 8) @ feats  # [C/2, N]
        for i in range(9):
            w = torch.softmax(th[:, i : i + 1].T @ ph, dim=1)[0]  # [N] weights of query i
            o = sa.out.weight.view(8, 4) @ (g * w).sum(1)
            assert torch.allclose(out[b].reshape(8, 9)[:, i], feats[:, i] + 0.7 * o, atol=1e-12)


def test_spectral_norm_bounds_every_d_layer_and_is_optional_on_g():
    torch.manual_seed(0)
    G, D = build_nets(Spec("image", (1, 16, 16)), ModelConfig(arch="resnet", z_dim=8, g_width=8, d_width=8, spectral_norm_d=True))
    assert has_spectral_norm(D) and not has_spectral_norm(G)
    D.train()
    for _ in range(30):  # power iterations converge during training forwards
        D(torch.randn(2, 1, 16, 16))
    for m in D.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            w = m.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
    G2, _ = build_nets(Spec("image", (1, 16, 16)), ModelConfig(arch="dcgan", z_dim=8, g_width=8, d_width=8, spectral_norm_g=True))
    assert has_spectral_norm(G2)


@pytest.mark.parametrize(
    "arch, conditioning, g_cond",
    [("dcgan", "concat", "auto"), ("mlp", "concat", "auto"), ("dcgan", "projection", "auto"), ("resnet", "projection", "cbn"),
     ("resnet", "concat", "embed"), ("dcgan", "acgan", "auto"), ("resnet", "acgan", "auto"), ("dcgan", "acgan", "mul"),
     ("mlp", "concat", "mul")],
)
def test_conditional_nets_use_the_labels_and_train(arch, conditioning, g_cond):
    torch.manual_seed(0)
    spec = Spec("image", (1, 8, 8), num_classes=3)
    mc = ModelConfig(arch=arch, z_dim=8, g_width=8, d_width=8, conditioning=conditioning, g_conditioning=g_cond, num_classes=3)
    G, D = build_nets(spec, mc)
    cfg = Config()
    cfg.model = mc
    before, after = train_steps(G, D, torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]), 8, "ns", cfg)
    G.eval()  # (conditional batch norm starts with gain 1 and bias 0 for every class: check after training)
    z = torch.randn(4, 8).repeat(3, 1)
    y = torch.arange(3).repeat_interleave(4)
    x = G(z, y)
    assert x.shape == (12, 1, 8, 8)
    assert not torch.allclose(x[:4], x[4:8])  # same noise, another class -> another image
    logits = D(x, y)
    assert logits.shape == (12,)
    if conditioning != "acgan":  # D's score depends on the label
        assert not torch.allclose(D(x, torch.zeros_like(y)), D(x, torch.ones_like(y)))
    else:
        _, aux = D.forward_aux(x, y)
        assert aux.shape == (12, 3)
    assert_all_updated(before, after)


def test_multiplied_label_embedding_scales_every_noise_entry():
    """g_conditioning=mul: G's base sees z * embed(y), the same width as z (no extra inputs), so a class's
    image still moves with its noise."""
    mc = ModelConfig(arch="dcgan", z_dim=8, g_width=8, d_width=8, conditioning="acgan", g_conditioning="mul", num_classes=3)
    G, _ = build_nets(Spec("image", (1, 8, 8), num_classes=3), mc)
    assert G.multiply and G.embed.weight.shape == (3, 8)
    assert G.base.net[0].in_channels == 8  # (embed would make it 8 + 8)
    seen = []
    G.base.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 1, 0])
    G(z, y)
    torch.testing.assert_close(seen[0], z * G.embed.weight[y], rtol=0, atol=0)
    G.eval()
    a, b = G(torch.randn(2, 8), torch.tensor([1, 1]))
    assert not torch.allclose(a, b)  # one class, two noises -> two images


def test_infogan_codes_from_gaussian_noise_are_uniform():
    base = torch.nn.Identity()
    G = InfoGenerator(base, 12, 4, 2)
    z = torch.randn(40000, 12, generator=torch.Generator().manual_seed(0))
    cat, cont = G.codes(z)
    freq = torch.bincount(cat, minlength=4).double() / len(cat)
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)
    assert cont.min() >= -1 and cont.max() <= 1
    assert cont.mean().abs() < 0.02 and cont.var().item() == pytest.approx(1 / 3, abs=0.01)  # U(-1, 1)
    lat = G(z[:5], torch.full((5,), 2))
    assert torch.equal(lat[:, :6], z[:5, :6]) and torch.equal(lat[:, 6:10], torch.eye(4)[[2] * 5])


def test_infogan_noise_std_scales_the_noise_alone():
    z = torch.randn(6, 12, generator=torch.Generator().manual_seed(1))
    plain, scaled = InfoGenerator(torch.nn.Identity(), 12, 4, 2), InfoGenerator(torch.nn.Identity(), 12, 4, 2, 0.1)
    a, b = plain(z), scaled(z)
    torch.testing.assert_close(b[:, :6], 0.1 * z[:, :6], rtol=0, atol=0)  # the noise entries, times 0.1
    assert torch.equal(a[:, 6:], b[:, 6:])  # the one-hot category and the continuous codes as they were
    cfg = ModelConfig(arch="mlp", z_dim=12, g_width=8, d_width=8, info_cat=4, info_cont=2, info_noise_std=0.1)
    G, _ = build_nets(Spec("image", (1, 8, 8)), cfg)
    assert G.noise_std == 0.1
    with pytest.raises(GanforgeError, match="model.info_noise_std"):
        dataclasses.replace(cfg, info_noise_std=0.0).check()


def test_infogan_and_began_nets_train():
    torch.manual_seed(0)
    cfg = Config()
    cfg.model = ModelConfig(arch="dcgan", z_dim=12, g_width=8, d_width=8, info_cat=3, info_cont=2)
    G, D = build_nets(Spec("image", (1, 8, 8)), cfg.model)
    assert D.forward_aux(torch.randn(2, 1, 8, 8))[1].shape == (2, 5)
    assert_all_updated(*train_steps(G, D, torch.rand(4, 1, 8, 8) * 2 - 1, None, 12, "infogan", cfg))
    cfg.model = ModelConfig(arch="began", z_dim=8, g_width=8, d_width=8)
    for size in (8, 28):
        G, D = build_nets(Spec("image", (1, size, size)), cfg.model)
        x = torch.rand(3, 1, size, size) * 2 - 1
        assert D.reconstruct(x).shape == x.shape and D(x).shape == (3,) and (D(x) <= 0).all()
        assert_all_updated(*train_steps(G, D, x, None, 8, "began", cfg))


def test_class_grid_rows_share_noise_per_column():
    z = torch.randn(64, 5)
    zz, y, cols = class_grid_inputs(z, 10)
    assert cols == 6 and zz.shape == (60, 5)
    assert y.tolist() == [k for k in range(10) for _ in range(6)]
    assert torch.equal(zz[6:12], z[:6]) and torch.equal(zz[:6], z[:6])
    assert class_grid_inputs(z, None)[0] is z


# ---------------------------------------------------------------------------- bad combinations

TINY = ["--steps", "1", "--batch-size", "4", "--z-dim", "8", "--set", "model.g_width=4", "--set", "model.d_width=4",
        "--set", "data.max_items=16", "--quiet"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "toy2d-ring", "--set", "model.conditioning=concat"], "needs labelled data"),
        (["--dataset", "toy2d-ring", "--arch", "resnet"], "architecture 'resnet' makes images"),
        (["--dataset", "toy2d-ring", "--arch", "began", "--objective", "began"], "architecture 'began' makes images"),
        (["--dataset", "toy2d-ring", "--arch", "dcgan"], "architecture 'dcgan' makes images"),
        (["--dataset", "digits", "--objective", "began"], "needs an autoencoder discriminator"),
        (["--dataset", "digits", "--arch", "began"], "trained by --objective began"),
        (["--dataset", "digits", "--arch", "resnet", "--set", "model.attention=16"], "never has that resolution; valid: 4 or auto"),
        (["--dataset", "digits", "--arch", "dcgan", "--set", "model.attention=4"], "needs --arch resnet"),
        (["--dataset", "digits", "--objective", "infogan"], "needs latent codes"),
        (["--dataset", "digits", "--set", "model.conditioning=maybe"], "unknown conditioning 'maybe'"),
        (["--dataset", "digits", "--set", "model.info_cat=4", "--set", "model.conditioning=acgan"], "cannot be combined"),
        (["--dataset", "digits", "--set", "model.info_cat=10"], r"z_dim \(8\) must exceed"),
        (["--dataset", "digits", "--set", "train.diffaugment=flip"], "unknown policy 'flip'"),
        (["--dataset", "digits", "--set", "train.ema_decay=1.5"], r"ema_decay must be in \[0, 1\)"),
        (["--dataset", "digits", "--arch", "dcgan", "--set", "model.conditioning=acgan", "--set", "model.g_conditioning=cbn"],
         "needs --arch resnet"),
    ],
)
def test_bad_combinations_exit_2_before_the_run_directory(tmp_path, run_cli, args, message):
    out = tmp_path / "run"
    code, _, err = run_cli("train", *args, "--out", out, *TINY)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_unlabelled_folder_refuses_conditioning(tmp_path, run_cli, image_folder):
    code, _, err = run_cli("train", "--dataset", "folder", "--data", image_folder, "--image-size", "8", "--preset", "acgan",
                           "--out", tmp_path / "r", *TINY)
    assert code == 2 and "needs labelled data" in err
