"""The GAN family's losses and penalties against closed forms, per-sample loops and finite differences."""

import math

import pytest
import torch

from ganforge import stats
from ganforge.augment import diff_augment
from ganforge.config import BEGANConfig, Config, ObjectiveConfig, R1Config, WGANConfig
from ganforge.objectives import OBJECTIVES, build_objective, losses
from ganforge.objectives.penalties import gradient_penalty, r1_penalty
from ganforge.train.ema import EMA

REAL = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
FAKE = torch.tensor([2.0, -1.5, 0.25, -0.7, 1.0], dtype=torch.float64)


def mean(xs):
    return sum(xs) / len(xs)


def test_wgan_hinge_lsgan_closed_form():
    r, f = REAL.tolist(), FAKE.tolist()
    assert losses.wgan_d(real_logits=REAL, fake_logits=FAKE).item() == pytest.approx(mean(f) - mean(r), rel=1e-12)
    assert losses.wgan_g(fake_logits=FAKE).item() == pytest.approx(-mean(f), rel=1e-12)
    hinge = mean([max(0.0, 1 - x) for x in r]) + mean([max(0.0, 1 + x) for x in f])
    assert losses.hinge_d(real_logits=REAL, fake_logits=FAKE).item() == pytest.approx(hinge, rel=1e-12)
    assert losses.hinge_g(fake_logits=FAKE).item() == pytest.approx(-mean(f), rel=1e-12)
    ls = 0.5 * mean([(x - 1) ** 2 for x in r]) + 0.5 * mean([x**2 for x in f])
    assert losses.lsgan_d(real_logits=REAL, fake_logits=FAKE).item() == pytest.approx(ls, rel=1e-12)
    assert losses.lsgan_g(fake_logits=FAKE).item() == pytest.approx(0.5 * mean([(x - 1) ** 2 for x in f]), rel=1e-12)


def test_hinge_is_zero_beyond_the_margin_and_lsgan_at_its_targets():
    assert losses.hinge_d(real_logits=torch.tensor([1.0, 5.0]), fake_logits=torch.tensor([-1.0, -3.0])).item() == 0.0
    assert losses.lsgan_d(real_logits=torch.ones(3), fake_logits=torch.zeros(3)).item() == 0.0
    assert losses.lsgan_g(fake_logits=torch.ones(3)).item() == 0.0


def test_l1_reconstruction_and_class_ce_closed_form():
    x = torch.tensor([[[1.0, -1.0]], [[0.5, 0.0]]], dtype=torch.float64)  # [2, 1, 2]
    r = torch.tensor([[[0.0, -1.0]], [[0.0, 1.0]]], dtype=torch.float64)
    assert losses.l1_reconstruction(x=x, recon=r).tolist() == pytest.approx([0.5, 0.75], rel=1e-12)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])
    expect = mean([-(2.0 - math.log(math.exp(2) + 1 + math.exp(-1))), math.log(3)])
    assert losses.class_ce(logits=logits, labels=y).item() == pytest.approx(expect, rel=1e-12)


def _mlp_d():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1), torch.nn.Flatten(0)).double()


def test_gradient_penalty_against_per_sample_gradients_and_finite_differences():
    D = _mlp_d()
    real = torch.randn(4, 6, dtype=torch.float64)
    fake = torch.randn(4, 6, dtype=torch.float64)
    alpha = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64)
    gp = gradient_penalty(D, real, fake, alpha)
    # oracle 1: each interpolate's own input gradient, one sample at a time
    terms = []
    for i in range(4):
        xi = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi).sum(), xi)
        terms.append((g.norm() - 1).pow(2).item())
    assert gp.item() == pytest.approx(mean(terms), rel=1e-10)
    # oracle 2: d gp / d weights through the double backward equals central finite differences
    w = D[0].weight
    (grad_w,) = torch.autograd.grad(gp, w)
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (4, 5)]:
        with torch.no_grad():
            w[idx] += eps
        up = gradient_penalty(D, real, fake, alpha).item()
        with torch.no_grad():
            w[idx] -= 2 * eps
        down = gradient_penalty(D, real, fake, alpha).item()
        with torch.no_grad():
            w[idx] += eps
        assert grad_w[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_gradient_penalty_draws_one_alpha_per_sample_in_0_1():
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False), torch.nn.Flatten(0)).double()
    with torch.no_grad():
        D[1].weight.fill_(0.5)  # a linear critic: ||grad|| = ||w|| = 1 everywhere -> penalty exactly 0
    real, fake = torch.randn(8, 1, 2, 2, dtype=torch.float64), torch.randn(8, 1, 2, 2, dtype=torch.float64)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(0.0, abs=1e-20)
    with torch.no_grad():
        D[1].weight.fill_(1.0)  # ||w|| = 2 -> (2 - 1)^2 = 1 for any interpolate
    assert gradient_penalty(D, real, fake).item() == pytest.approx(1.0, rel=1e-12)


def test_r1_penalty_against_per_sample_gradients():
    D = _mlp_d()
    real = torch.randn(5, 6, dtype=torch.float64)
    expect = []
    for i in range(5):
        xi = real[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xi).sum(), xi)
        expect.append(g.pow(2).sum().item())
    assert r1_penalty(D, real).item() == pytest.approx(mean(expect), rel=1e-10)


def test_lazy_r1_runs_every_n_d_steps_scaled_by_n():
    D = _mlp_d()
    G = torch.nn.Linear(3, 6).double()
    obj = build_objective(ObjectiveConfig(name="ns", r1=R1Config(gamma=2.0, every=3)))
    obj.setup(Config(), G, D)
    seen = []
    for _ in range(6):
        stats.collect()
        obj.accumulate_gradients("D", G, D, torch.randn(4, 6, dtype=torch.float64), None, torch.randn(4, 3, dtype=torch.float64))
        seen.append("penalty/r1" in stats.collect())
    assert seen == [True, False, False, True, False, False]
    assert obj.state_dict() == {"d_steps": 6}


def test_wgan_clips_d_weights_after_the_d_step_only():
    D = _mlp_d()
    with torch.no_grad():
        D[0].weight.mul_(100)
    obj = build_objective(ObjectiveConfig(name="wgan", wgan=WGANConfig(clip=0.05)))
    obj.after_step("G", None, D)
    assert D[0].weight.abs().max() > 0.05
    obj.after_step("D", None, D)
    assert all(p.abs().max() <= 0.05 for p in D.parameters())
    assert (D[0].weight.abs() == 0.05).any()


def test_began_controller_closed_form_and_clipping():
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1); M = L(x) + |gamma L(x) - L(G(z))|."""

    class AE(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.s = torch.nn.Parameter(torch.tensor(scale))

        def reconstruct(self, x):
            return x * self.s

    G = torch.nn.Identity()
    real = torch.full((2, 1, 2, 2), 0.5)
    fake_z = torch.full((2, 1, 2, 2), -0.2)
    obj = build_objective(ObjectiveConfig(name="began", began=BEGANConfig(gamma=0.5, lambda_k=0.1)))
    D = AE(0.0)  # reconstruction 0: L(x) = 0.5, L(G(z)) = 0.2
    stats.collect()
    obj.accumulate_gradients("D", G, D, real, None, fake_z)
    obj.accumulate_gradients("G", G, D, real, None, fake_z)
    got = stats.collect()
    assert obj.k == pytest.approx(0.1 * (0.5 * 0.5 - 0.2), rel=1e-6)
    assert got["began/M_global"] == pytest.approx(0.5 + abs(0.25 - 0.2), rel=1e-6)
    obj.cfg.began.lambda_k = 100.0
    obj.accumulate_gradients("D", G, D, real, None, fake_z)
    obj.accumulate_gradients("G", G, D, real, None, fake_z)
    assert obj.k == 1.0  # clipped above
    obj.accumulate_gradients("D", G, D, real, None, torch.full((2, 1, 2, 2), -0.9))  # L(G(z)) = 0.9 > gamma L(x)
    obj.accumulate_gradients("G", G, D, real, None, torch.full((2, 1, 2, 2), -0.9))
    assert obj.k == 0.0  # clipped below
    assert obj.state_dict()["k"] == 0.0


def test_ema_update_closed_form():
    G = torch.nn.Linear(2, 1)
    ema = EMA(G, decay=0.9)
    w0 = G.weight.detach().clone()
    with torch.no_grad():
        G.weight.add_(1.0)
    ema.update(G)
    assert torch.allclose(ema.model.weight, 0.9 * w0 + 0.1 * (w0 + 1.0), rtol=1e-6, atol=1e-7)
    assert not ema.model.weight.requires_grad


def test_diffaugment_policies():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    t = diff_augment(x, "translation")
    assert t.shape == x.shape
    # each translated image is x shifted by at most 1 pixel (1/8 of 8) with zero padding: some sample matches a shift
    shifted = 0
    for i in range(16):
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                ref = torch.nn.functional.pad(x[i], [1, 1, 1, 1])[:, 1 + dx : 9 + dx, 1 + dy : 9 + dy]
                shifted += torch.equal(ref, t[i])
    assert shifted >= 16
    c = diff_augment(x, "cutout")
    zeros = (c == 0).all(dim=1).flatten(1).sum(1)  # [B] zeroed pixels per image
    assert ((zeros >= 4) & (zeros <= 16)).all()  # a 4x4 square, partly outside the image at the border
    assert torch.equal(c[c != 0], x[c != 0])
    xg = x.clone().requires_grad_(True)
    diff_augment(xg, "color,translation,cutout").sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0  # differentiable


def test_every_objective_is_registered():
    assert {"ns", "minimax", "wgan", "wgan-gp", "hinge", "lsgan", "began", "infogan"} <= set(OBJECTIVES.names())
