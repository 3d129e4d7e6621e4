import math

import pytest
import torch

from ganforge import stats
from ganforge.config import ObjectiveConfig
from ganforge.objectives import OBJECTIVES, build_objective, losses

LOGITS = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_d_loss_closed_form():
    real, fake = LOGITS, LOGITS.flip(0)
    expect = sum(-math.log(sigmoid(r)) for r in real.tolist()) / 5 + sum(
        -math.log(1 - sigmoid(f)) for f in fake.tolist()
    ) / 5
    got = losses.gan_d(real_logits=real, fake_logits=fake).item()
    assert got == pytest.approx(expect, rel=1e-12)


def test_generator_losses_closed_form():
    ns = sum(-math.log(sigmoid(f)) for f in LOGITS.tolist()) / 5
    mm = sum(math.log(1 - sigmoid(f)) for f in LOGITS.tolist()) / 5
    assert losses.ns_g(fake_logits=LOGITS).item() == pytest.approx(ns, rel=1e-12)
    assert losses.minimax_g(fake_logits=LOGITS).item() == pytest.approx(mm, rel=1e-12)


def test_losses_stay_finite_for_extreme_logits():
    x = torch.tensor([-1e4, 1e4], dtype=torch.float32, requires_grad=True)
    for loss in (losses.gan_d(real_logits=x, fake_logits=x), losses.ns_g(fake_logits=x), losses.minimax_g(fake_logits=x)):
        (g,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.isfinite(g).all()


def test_minimax_saturates_where_nonsaturating_does_not():
    """With a confident D (D(G(z)) ~ 0) the minimax G gradient vanishes; the NS one does not."""
    x = torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.minimax_g(fake_logits=x), x)
    (g_ns,) = torch.autograd.grad(losses.ns_g(fake_logits=x), x)
    assert abs(g_mm.item()) == pytest.approx(sigmoid(-8.0), rel=1e-9)  # ~3.4e-4
    assert abs(g_ns.item()) == pytest.approx(1 - sigmoid(-8.0), rel=1e-9)  # ~1


def test_objective_reports_losses_and_d_outputs():
    G = torch.nn.Linear(3, 2)
    D = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    stats.collect()
    obj = build_objective(ObjectiveConfig(name="minimax"))
    obj.accumulate_gradients("D", G, D, torch.randn(6, 2), None, torch.randn(6, 3))
    obj.accumulate_gradients("G", G, D, torch.randn(6, 2), None, torch.randn(6, 3))
    got = stats.collect()
    assert {"loss/D", "loss/G", "D(x)", "D(G(z))"} <= set(got)
    assert 0 < got["D(x)"] < 1 and 0 < got["D(G(z))"] < 1
    assert G.weight.grad is not None and D[0].weight.grad is not None
    with pytest.raises(ValueError, match="unknown objective 'wgan-div'.*valid: " + ", ".join(OBJECTIVES.names())):
        OBJECTIVES.get("wgan-div")


class _AuxD(torch.nn.Module):
    """A linear D with a linear classifier head (forward_aux: logits [B], class logits [B, K])."""

    def __init__(self):
        super().__init__()
        self.adv, self.cls = torch.nn.Linear(2, 1).double(), torch.nn.Linear(2, 3).double()

    def forward_aux(self, x, y):
        return self.adv(x).flatten(), self.cls(x)


class _LabelG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.emb = torch.nn.Linear(4, 2).double(), torch.nn.Embedding(3, 2).double()

    def forward(self, z, y):
        return self.lin(z) + self.emb(y)


@pytest.mark.parametrize("fake_weight", [1.0, 0.0, 0.5])
def test_acgan_fake_weight_scales_what_ds_classifier_learns_from_generated_images(fake_weight):
    """D's step: adversarial loss + weight * CE(real) + fake_weight * weight * CE(fake); the oracle is
    autograd of that formula written out. fake_weight 0: D's classifier learns from real images only."""
    from ganforge.config import ACConfig

    torch.manual_seed(0)
    G, D = _LabelG(), _AuxD()
    obj = build_objective(ObjectiveConfig(name="ns", ac=ACConfig(weight=2.0, fake_weight=fake_weight)))
    obj.conditioning = "acgan"  # what setup() reads from model.conditioning
    real, z, y = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])
    G.requires_grad_(False)
    obj.accumulate_gradients("D", G, D, real, y, z)
    got = D.cls.weight.grad.clone()
    D.zero_grad(set_to_none=True)
    fake = G(z, y)
    ce = torch.nn.functional.cross_entropy
    expect = losses.gan_d(real_logits=D.adv(real).flatten(), fake_logits=D.adv(fake).flatten())
    expect = expect + 2.0 * ce(D.cls(real), y) + fake_weight * 2.0 * ce(D.cls(fake), y)
    expect.backward()
    torch.testing.assert_close(got, D.cls.weight.grad, rtol=1e-12, atol=1e-15)
