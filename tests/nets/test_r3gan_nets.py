"""R3GAN's modernised ResNet (`--arch r3gan`): shapes and ranges at every size, with and without
projection conditioning, refusals as one-line errors, the fix-up initialisation, no normalisation,
the [1, 2, 1] resampling (against R3GAN's own [1, 3, 3, 1] formulation), and real training steps."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import Config, ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import ARCHS, DCGAN_SIZES, build_nets
from ganforge.nets.heads import HeadedDiscriminator, LabelledGenerator
from ganforge.nets.layers import Norm2d, has_spectral_norm
from ganforge.nets.r3gan import (
    LEAKY_GAIN,
    InvertedBottleneck,
    R3GANDiscriminator,
    R3GANGenerator,
    Resample,
    fixup_gain,
    group_count,
    lowpass_kernel,
    stage_widths,
)
from ganforge.run import Spec
from helpers import train_steps

Z = 8
PROJ = dict(conditioning="projection", g_conditioning="embed", num_classes=3)


def tiny(size: int, channels: int = 1, **kw) -> tuple[nn.Module, nn.Module]:
    spec = Spec("image", (channels, size, size), num_classes=kw.get("num_classes"))
    return build_nets(spec, ModelConfig(arch="r3gan", z_dim=Z, g_width=8, d_width=8, **kw))


def blocks(net: nn.Module) -> list[InvertedBottleneck]:
    return [m for m in net.modules() if isinstance(m, InvertedBottleneck)]


def r3gan_steps(G, D, real, labels, steps):
    """Real D and G updates through the ns objective on an r3gan config; named parameters before, after."""
    cfg = Config()
    cfg.model = ModelConfig(arch="r3gan", z_dim=Z, **(PROJ if labels is not None else {}))
    return train_steps(G, D, real, labels, Z, "ns", cfg, steps)


# ---------------------------------------------------------------------------- shapes and refusals


@pytest.mark.parametrize("size, channels", [(s, 1) for s in DCGAN_SIZES] + [(32, 3)])
@pytest.mark.parametrize("conditional", [False, True])
def test_every_size_shapes_and_ranges(size, channels, conditional):
    torch.manual_seed(0)
    G, D = tiny(size, channels, **(PROJ if conditional else {}))
    assert isinstance(G, LabelledGenerator) == conditional and isinstance(D, HeadedDiscriminator) == conditional
    z = torch.randn(4, Z) * 3  # large noise: the tanh still bounds the images
    y = torch.tensor([0, 1, 2, 0]) if conditional else None
    x = G(z, y)
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.05  # in range, and not a constant
    logits = D(x, y)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    if conditional:  # the projection head: D's score depends on the label, G's image on the class
        assert not torch.allclose(D(x, torch.zeros_like(y)), D(x, torch.ones_like(y)))
        assert not torch.allclose(G(z, torch.zeros_like(y)), G(z, torch.ones_like(y)))
        assert D.embed.weight.shape == (3, D.base.feature_dim)


def test_28x28_starts_from_a_7x7_basis_and_64x64_halves_the_top_width():
    G, D = tiny(28)
    assert G.basis.shape == (8, 7, 7) and D.basis.kernel_size == (7, 7)
    assert stage_widths(64, 7, 2) == [64, 64, 64]  # 7 -> 14 -> 28
    assert stage_widths(64, 4, 4) == [64, 64, 64, 64, 32]  # 4 .. 32 at `width`, 64x64 at half (the paper's FFHQ-64)
    assert group_count(128) == 8 and group_count(16) == 1 and group_count(8) == 1 and group_count(48) == 3


@pytest.mark.parametrize("shape", [(1, 12, 12), (1, 7, 7), (3, 128, 128), (1, 8, 16)])
def test_sizes_it_cannot_make_are_one_line_errors(shape):
    message = rf"architecture 'r3gan' cannot make {shape[1]}x{shape[2]} images; sizes: 8, 16, 28, 32, 64"
    with pytest.raises(GanforgeError, match=message) as e:
        build_nets(Spec("image", shape), ModelConfig(arch="r3gan"))
    assert "\n" not in str(e.value)


def test_points_and_cbn_are_refused_in_one_line():
    with pytest.raises(GanforgeError, match=r"architecture 'r3gan' makes images; for 2-D points \(toy2d\) use --arch mlp") as e:
        build_nets(Spec("points", (2,)), ModelConfig(arch="r3gan"))
    assert "\n" not in str(e.value)
    with pytest.raises(GanforgeError, match="use --arch mlp"):  # the factory itself, too
        ARCHS.get("r3gan")(Spec("points", (2,)), ModelConfig(arch="r3gan"))
    cfg = ModelConfig(arch="r3gan", **{**PROJ, "g_conditioning": "cbn"})
    with pytest.raises(GanforgeError, match="g_conditioning=cbn.*r3gan generator has no conditional batch norm") as e:
        build_nets(Spec("image", (1, 8, 8), num_classes=3), cfg)
    assert "\n" not in str(e.value)


def test_cli_refuses_r3gan_on_points(tmp_path, run_cli):
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--dataset", "toy2d-ring", "--arch", "r3gan", "--out", out, "--steps", "1", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "architecture 'r3gan' makes images" in err
    assert not out.exists()


# ---------------------------------------------------------------------------- the architecture's rules


def test_no_normalisation_layer_anywhere():
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, Norm2d)
    for kw in ({}, PROJ):
        G, D = tiny(32, 3, **kw)
        mods = list(G.modules()) + list(D.modules())
        assert not [m for m in mods if isinstance(m, norms) or "Norm" in type(m).__name__]
        assert any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in mods)  # the grouped 3x3 convs are there


def test_fixup_every_block_is_the_identity_at_init():
    torch.manual_seed(0)
    G, D = build_nets(Spec("image", (3, 32, 32)), ModelConfig(arch="r3gan", z_dim=Z))  # default widths (64)
    for net in (G, D):
        bs = blocks(net)
        assert len(bs) == 8  # 2 blocks at each of 4, 8, 16, 32
        for b in bs:
            assert not b.project.weight.any() and b.project.bias is None
            assert not b.expand.bias.any() and not b.conv.bias.any()
            x = torch.randn(2, b.expand.in_channels, 4, 4)
            assert torch.equal(b(x), x)
            # ... but the branch itself is not dead: its hidden activations are not zero
            assert F.leaky_relu(b.expand(x), 0.2).abs().mean() > 0.1


def test_fixup_scales_the_other_branch_convs_by_L_to_the_minus_quarter():
    assert fixup_gain(8) == pytest.approx(math.sqrt(2 / (1 + 0.2**2)) * 8 ** -0.25, rel=1e-12)
    assert LEAKY_GAIN == pytest.approx(math.sqrt(2 / 1.04))
    torch.manual_seed(0)
    for L, net in ((8, R3GANGenerator(Z, 3, 32, 64)), (6, R3GANDiscriminator(3, 28, 64))):
        expand = torch.cat([b.expand.weight.flatten() for b in blocks(net)])  # fan_in 64
        conv = torch.cat([b.conv.weight.flatten() for b in blocks(net)])  # fan_in 16 x 9 = 144
        ratio_expand = expand.std().item() / (fixup_gain(L) / math.sqrt(64))
        ratio_conv = conv.std().item() / (fixup_gain(L) / math.sqrt(144))
        assert 0.97 < ratio_expand < 1.03 and 0.97 < ratio_conv < 1.03  # two-sided: neither He nor unscaled
        assert abs(expand.mean().item()) < 0.05 * expand.std().item()  # zero-mean


def test_spectral_norm_still_applies_without_nan():
    torch.manual_seed(0)
    G, D = build_nets(Spec("image", (1, 8, 8)), ModelConfig(arch="r3gan", z_dim=Z, g_width=8, d_width=8,
                                                            spectral_norm_d=True, spectral_norm_g=True))
    assert has_spectral_norm(G) and has_spectral_norm(D)
    x = G(torch.randn(4, Z))
    assert torch.isfinite(x).all() and torch.isfinite(D(x)).all()  # (zero fix-up weights / sigma 0 would be NaN)
    G2, D2 = build_nets(Spec("image", (1, 8, 8)), ModelConfig(arch="r3gan", z_dim=Z, g_width=8, d_width=8, spectral_norm_d=True))
    assert has_spectral_norm(D2) and not has_spectral_norm(G2)
    assert not any(b.project.weight.any() for b in blocks(G2))  # G keeps its fix-up init


# ---------------------------------------------------------------------------- resampling


def test_lowpass_filter_is_the_normalised_binomial():
    k = lowpass_kernel()
    assert k.shape == (3, 3) and k.sum().item() == pytest.approx(1.0, abs=1e-7)
    assert torch.allclose(k, torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16)
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0))


@pytest.mark.parametrize("h", [4, 7, 14])
def test_constant_images_stay_constant_through_up_and_down_sampling(h):
    x = torch.full((2, 3, h, h), -0.7)
    up = Resample(up=True)(x)
    assert up.shape == (2, 3, 2 * h, 2 * h) and torch.allclose(up, torch.full_like(up, -0.7), atol=1e-6)
    down = Resample(up=False)(up)
    assert down.shape == x.shape and torch.allclose(down, x, atol=1e-6)


def test_resampling_matches_r3gans_interpolative_resamplers_inside_the_image():
    """R3GAN: up = transposed conv (stride 2) with 4 * outer(f, f), down = conv (stride 2) with outer(f, f),
    f = [1, 3, 3, 1] / 8 = [1, 2, 1] convolved with [1, 1]; zero padding 1. Borders differ (replicated here)."""
    torch.manual_seed(0)
    f = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64) / 8
    k = torch.outer(f, f)[None, None]  # [1, 1, 4, 4]
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)  # (channels folded into the batch, as the reference does)
    ref_up = F.conv_transpose2d(x, 4 * k, stride=2, padding=1)  # [3, 1, 16, 16]
    ref_down = F.conv2d(x, k, stride=2, padding=1)  # [3, 1, 4, 4]
    up, down = Resample(up=True).double()(x), Resample(up=False).double()(x)
    assert up.shape == ref_up.shape and down.shape == ref_down.shape
    assert torch.allclose(up[..., 1:-1, 1:-1], ref_up[..., 1:-1, 1:-1], atol=1e-12)
    assert torch.allclose(down[..., 1:-1, 1:-1], ref_down[..., 1:-1, 1:-1], atol=1e-12)
    assert not torch.allclose(up, ref_up)  # the border is where replicate and zero padding part


def test_resampling_kernel_is_a_buffer_not_a_weight():
    G, D = tiny(16)
    assert not any("kernel" in n for n, _ in list(G.named_parameters()) + list(D.named_parameters()))
    assert not any("kernel" in n for n in list(G.state_dict()) + list(D.state_dict()))  # weights files hold weights only


# ---------------------------------------------------------------------------- training


@pytest.mark.parametrize("size", [8, 28])
def test_one_real_step_moves_all_but_the_branch_interiors_and_two_steps_move_everything(size):
    torch.manual_seed(0)
    G, D = tiny(size)
    real = torch.rand(4, 1, size, size) * 2 - 1
    before, after = r3gan_steps(G, D, real, None, steps=1)
    interior = {n for n in before if ".expand." in n or ".conv." in n}  # behind a zero-initialised last conv
    assert interior and len(interior) < len(before)
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert moved == set(before) - interior  # step 1: exactly zero gradient behind the zero conv (fix-up)
    assert all(torch.isfinite(p).all() for p in after.values())
    b2, a2 = r3gan_steps(G, D, real, None, steps=1)  # the last convs have moved: now everything learns
    assert {n for n in b2 if not torch.equal(b2[n], a2[n])} == set(b2)


def test_projection_conditioned_nets_train_every_parameter():
    torch.manual_seed(0)
    G, D = tiny(8, **PROJ)
    before, after = r3gan_steps(G, D, torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]), steps=2)
    assert "G.embed.weight" in before and "D.embed.weight" in before
    assert [n for n in before if torch.equal(before[n], after[n])] == []


def test_gradients_reach_the_generators_first_layer():
    torch.manual_seed(0)
    for kw in ({}, PROJ):
        G, D = tiny(28, **kw)
        y = torch.tensor([0, 1, 2]) if kw else None
        D(G(torch.randn(3, Z), y), y).mean().backward()
        base = G.base if kw else G
        for p in (base.fc.weight, base.basis) + ((G.embed.weight,) if kw else ()):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
