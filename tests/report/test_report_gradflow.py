"""Gradient flow statistics: grad/weight/update per layer, against hand-computed norms."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ganforge.run import RunDir, read_stats
from ganforge.train import Trainer, layer_grad_norms
from ganforge.train.gradflow import layer_update_ratios, layer_weight_norms, snapshot

from helpers import tiny_config


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))


def _norm(*ts: torch.Tensor) -> float:
    return float(torch.sqrt(sum((t.detach().double() ** 2).sum() for t in ts)))


def test_norms_and_update_ratio_match_hand_computation():
    net = _net()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    net(x).pow(2).mean().backward()
    l0, l2 = net[0], net[2]
    g = {k: float(v) for k, v in layer_grad_norms(net, "grad/G").items()}
    assert set(g) == {"grad/G/0", "grad/G/2", "grad/G/total"}
    assert g["grad/G/0"] == pytest.approx(_norm(l0.weight.grad, l0.bias.grad), rel=1e-6)
    assert g["grad/G/2"] == pytest.approx(_norm(l2.weight.grad, l2.bias.grad), rel=1e-6)
    assert g["grad/G/total"] == pytest.approx(_norm(*(p.grad for p in net.parameters())), rel=1e-6)

    before = snapshot(net)
    w0 = _norm(l0.weight, l0.bias)
    lr = 0.1
    torch.optim.SGD(net.parameters(), lr=lr).step()
    u = {k: float(v) for k, v in layer_update_ratios(net, before, "update/G").items()}
    # plain SGD moves each layer by lr * ||grad||: the ratio is lr * ||grad|| / ||w before||
    assert u["update/G/0"] == pytest.approx(lr * g["grad/G/0"] / w0, rel=1e-5)
    w = {k: float(v) for k, v in layer_weight_norms(net, "weight/G").items()}
    assert w["weight/G/2"] == pytest.approx(_norm(l2.weight, l2.bias), rel=1e-6)
    assert w["weight/G/total"] == pytest.approx(_norm(*net.parameters()), rel=1e-6)


def test_zero_weights_and_no_change_give_zero_not_nan():
    net = nn.Linear(2, 2)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    before = snapshot(net)
    assert float(layer_update_ratios(net, before, "update/D")["update/D/root"]) == 0.0


def test_a_zero_initialised_layer_that_moves_counts_zero_not_infinity():
    """R3GAN's fix-up convs start at zero: their first update has no relative size; an infinite ratio raised a
    false exploding-update alarm at every r3gan run's first logged step."""
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2, bias=False))
    nn.init.zeros_(net[1].weight)
    before = snapshot(net)
    with torch.no_grad():
        net[1].weight.add_(0.5)
        net[0].weight.mul_(3.0)  # a layer with weights: its ratio stays what it is (||3w - w|| / ||w|| = 2 on the weight)
    u = {k: float(v) for k, v in layer_update_ratios(net, before, "update/G").items()}
    assert u["update/G/1"] == 0.0
    w0 = _norm(before["0"][0], before["0"][1])
    assert u["update/G/0"] == pytest.approx(_norm(2 * before["0"][0]) / w0, rel=1e-6)
    # the network as a whole had weights: its ratio counts the zero layer's move too
    moved = _norm(2 * before["0"][0], net[1].weight)
    assert u["update/G/total"] == pytest.approx(moved / w0, rel=1e-6)


def test_a_spectral_normed_layer_is_one_layer_with_its_weight():
    """torch's spectral norm moves the weight into `parametrizations.weight.original`: it still counts with its
    layer, so the layer's update ratio is not its zero-initialised bias's alone."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    net = nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.ReLU(), nn.Linear(4, 1))
    nn.init.zeros_(net[0].bias)
    net(torch.randn(5, 3)).pow(2).mean().backward()
    g = {k: float(v) for k, v in layer_grad_norms(net, "grad/D").items()}
    assert set(g) == {"grad/D/0", "grad/D/2", "grad/D/total"}
    orig = net[0].parametrizations.weight.original
    assert g["grad/D/0"] == pytest.approx(_norm(orig.grad, net[0].bias.grad), rel=1e-6)
    before = snapshot(net)
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    u = {k: float(v) for k, v in layer_update_ratios(net, before, "update/D").items()}
    step = _norm(orig - before["0"][1], net[0].bias - before["0"][0])
    assert u["update/D/0"] == pytest.approx(step / _norm(before["0"][1]), rel=1e-5) and u["update/D/0"] < 1


def test_trainer_writes_grad_weight_update_with_the_same_layer_names(tmp_path):
    lr = 0.05
    cfg = tiny_config(**{"g_optim.name": "sgd", "g_optim.lr": lr, "log.log_every": 1, "log.grad_every": 1})
    t = Trainer(cfg)
    run = RunDir(tmp_path / "run")
    run.create()
    t.train(run)
    recs = read_stats(run.stats)
    for net in ("G", "D"):
        layers = {k.split("/", 2)[2] for k in recs[0] if k.startswith(f"grad/{net}/")} - {"preclip_total"}
        for kind in ("weight", "update"):
            assert {k.split("/", 2)[2] for k in recs[0] if k.startswith(f"{kind}/{net}/")} == layers
        modules = {name or "root" for name, m in getattr(t, net).named_modules() if list(m.parameters(recurse=False))}
        assert layers == modules | {"total"}
    # the last record's weight norms are the networks' weights now
    last = recs[-1]
    for name, m in t.G.named_modules():
        params = list(m.parameters(recurse=False))
        if params:
            assert last[f"weight/G/{name or 'root'}"] == pytest.approx(_norm(*params), rel=1e-5)
    # SGD on G: update = lr * grad / (weight after the previous step), record to record
    for prev, cur in zip(recs, recs[1:]):
        for key in [k for k in cur if k.startswith("update/G/") and not k.endswith("/total")]:
            layer = key.split("/", 2)[2]
            want = lr * cur[f"grad/G/{layer}"] / prev[f"weight/G/{layer}"]
            # abs: float32 rounding of w + delta when the update is ~1e-6 of the weight (BatchNorm gains)
            assert cur[key] == pytest.approx(want, rel=1e-4, abs=1e-7), key


def test_grad_every_controls_the_interval(tmp_path):
    t = Trainer(tiny_config(**{"log.grad_every": 3, "train.steps": 6}))
    run = RunDir(tmp_path / "run")
    run.create()
    t.train(run)
    recs = read_stats(run.stats)
    # updates 0 and 3 (0-based) are measured; their records are steps 1 and 4
    assert [r["step"] for r in recs if "update/G/total" in r] == [1, 4]
    assert [r["step"] for r in recs if "weight/D/total" in r] == [1, 4]
