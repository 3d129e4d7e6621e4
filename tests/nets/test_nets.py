import pytest
import torch

from ganforge.config import ModelConfig, ObjectiveConfig, OptimConfig
from ganforge.run import Spec
from ganforge.errors import GanforgeError
from ganforge.nets import ARCHS, DCGAN_SIZES, build_nets
from ganforge.objectives import build_objective
from ganforge.train.optim import build_optimizer

CASES = [("dcgan", s, c) for s in DCGAN_SIZES for c in (1, 3)] + [("mlp", s, c) for s in (8, 28) for c in (1, 3)]


def one_training_step(G, D, real, z_dim):
    """One real D update and one real G update; returns the parameters before and after."""
    objective = build_objective(ObjectiveConfig(name="ns"))
    opt_g, opt_d = build_optimizer(G.parameters(), OptimConfig(lr=1e-3)), build_optimizer(D.parameters(), OptimConfig(lr=1e-3))
    before = [p.detach().clone() for p in list(G.parameters()) + list(D.parameters())]
    z = torch.randn(real.shape[0], z_dim)
    opt_d.zero_grad()
    objective.accumulate_gradients("D", G, D, real, None, z)
    opt_d.step()
    opt_g.zero_grad()
    D.requires_grad_(False)
    objective.accumulate_gradients("G", G, D, real, None, z)
    opt_g.step()
    D.requires_grad_(True)
    after = [p.detach() for p in list(G.parameters()) + list(D.parameters())]
    return before, after


@pytest.mark.parametrize("arch, size, channels", CASES)
def test_every_architecture_and_size_shapes_and_one_step(arch, size, channels):
    torch.manual_seed(0)
    spec = Spec("image", (channels, size, size))
    G, D = build_nets(spec, ModelConfig(arch=arch, z_dim=16, g_width=8, d_width=8))
    z = torch.randn(4, 16)
    x = G(z)
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    logits = D(x)
    assert logits.shape == (4,)
    before, after = one_training_step(G, D, torch.rand(4, channels, size, size) * 2 - 1, 16)
    changed = [not torch.equal(a, b) for a, b in zip(before, after)]
    assert sum(changed) == len(changed)  # every parameter of G and D was updated
    assert all(torch.isfinite(a).all() for a in after)


def test_mlp_is_the_tutorials_network():
    G, D = build_nets(Spec("image", (1, 28, 28)), ModelConfig(arch="mlp", z_dim=100))
    lin_g = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    lin_d = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin_g] == [(100, 128), (128, 128), (128, 784)]
    assert [(m.in_features, m.out_features) for m in lin_d] == [(784, 128), (128, 128), (128, 1)]
    assert any(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules())


def test_mlp_g_activation_relu_changes_g_only_and_a_bad_name_is_refused():
    G, D = build_nets(Spec("points", (2,)), ModelConfig(arch="mlp", z_dim=8, depth=3, g_activation="relu"))
    assert [type(m) for m in G.net] == [torch.nn.Linear, torch.nn.ReLU] * 3 + [torch.nn.Linear, torch.nn.Identity]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in D.modules()) == 3
    # ReLU can flatten a region of z onto one point: a zero Jacobian where no hidden unit is active
    with torch.no_grad():
        G.net[0].bias.fill_(-100.0)
    z = torch.randn(3, 8, requires_grad=True)
    G(z).sum().backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    with pytest.raises(GanforgeError, match="model.g_activation must be leaky_relu or relu, got .gelu."):
        ModelConfig(g_activation="gelu").check()


def test_toy2d_mlp_outputs_unbounded_points():
    G, D = build_nets(Spec("points", (2,)), ModelConfig(arch="auto", z_dim=8))
    x = G(torch.randn(5, 8) * 100)
    assert x.shape == (5, 2) and D(x).shape == (5,)
    assert not any(isinstance(m, torch.nn.Tanh) for m in G.modules())


@pytest.mark.parametrize("size", [7, 12, 24, 48, 128])
def test_dcgan_rejects_sizes_it_cannot_make(size):
    with pytest.raises(GanforgeError, match=f"cannot make {size}x{size}.*8, 16, 28, 32, 64"):
        build_nets(Spec("image", (1, size, size)), ModelConfig(arch="dcgan"))


def test_dcgan_rejects_points_and_unknown_arch_lists_valid():
    with pytest.raises(GanforgeError, match="use --arch mlp"):
        build_nets(Spec("points", (2,)), ModelConfig(arch="dcgan"))
    with pytest.raises(ValueError, match="unknown architecture 'stylegan'.*valid: " + ", ".join(ARCHS.names())):
        build_nets(Spec("image", (1, 8, 8)), ModelConfig(arch="stylegan"))
