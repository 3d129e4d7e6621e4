"""Modules of ganforge.backprop.nn: torch-compatible names, state, layers and a GAN step."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from bp_oracle import rel_err

import ganforge.backprop as bp
from ganforge.backprop import Tensor, nn
from ganforge.backprop import functional as F

torch = pytest.importorskip("torch")
TOL = 1e-10


def mlp_gan(n):
    G = n.Sequential(n.Linear(8, 16), n.LeakyReLU(0.2), n.Linear(16, 16), n.LeakyReLU(0.2),
                     n.Linear(16, 12), n.Tanh())
    D = n.Sequential(n.Linear(12, 16), n.LeakyReLU(0.2), n.Linear(16, 1))
    return G, D


def dcgan(n):
    G = n.Sequential(n.ConvTranspose2d(6, 8, 7, 1, 0, bias=False), n.BatchNorm2d(8), n.ReLU(),
                     n.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), n.BatchNorm2d(4), n.ReLU(),
                     n.ConvTranspose2d(4, 1, 4, 2, 1), n.Tanh())
    D = n.Sequential(n.Conv2d(1, 4, 4, 2, 1), n.LeakyReLU(0.2),
                     n.Conv2d(4, 8, 4, 2, 1, bias=False), n.BatchNorm2d(8), n.LeakyReLU(0.2),
                     n.Conv2d(8, 1, 7, 1, 0), n.Flatten())
    return G, D


def to_torch(m_bp, m_t):
    """Copy our weights into the torch twin (torch's strict load checks names and shapes)."""
    m_t.load_state_dict(OrderedDict((k, torch.from_numpy(v.copy()))
                                    for k, v in m_bp.state_dict().items()))
    return m_t


def _grads_agree(m_bp, m_t):
    ours = dict(m_bp.named_parameters())
    for name, p in m_t.named_parameters():
        assert rel_err(ours[name].grad, p.grad.numpy()) < TOL, name


# --------------------------------------------------------------------- structure
def test_names_and_state_dict_keys_match_torch():
    bp.manual_seed(0)
    for build in (mlp_gan, dcgan):
        for m_bp, m_t in zip(build(nn), build(torch.nn)):
            assert [n for n, _ in m_bp.named_parameters()] == [n for n, _ in m_t.named_parameters()]
            assert list(m_bp.state_dict()) == list(m_t.state_dict())
            assert [n for n, _ in m_bp.named_modules()] == [n for n, _ in m_t.named_modules()]
            assert [n for n, _ in m_bp.named_buffers()] == [n for n, _ in m_t.named_buffers()]
            to_torch(m_bp.double(), m_t.double())


def test_module_registration_children_and_modes():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
            self.scale = nn.Parameter(np.ones(1))
            self.shared = self.body[0]  # the same module twice: parameters listed once
            self.note = "plain attribute"

        def forward(self, x):
            return self.body(x) * self.scale

    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias"]
    assert [n for n, _ in net.named_children()] == ["body", "shared"]
    assert len(list(net.modules())) == 5
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError):
        net.scale = Tensor(np.ones(1))  # a parameter slot takes a Parameter (or None)
    y = net(Tensor(np.ones((5, 3), np.float32)))
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(net)


def test_default_init_follows_torch_bounds_and_seed():
    bp.manual_seed(123)
    a = nn.Linear(50, 20)
    bp.manual_seed(123)
    b = nn.Linear(50, 20)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    c = nn.Linear(50, 20, rng=np.random.default_rng(5))
    d = nn.Linear(50, 20, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(c.bias.data, d.bias.data)
    assert a.weight.dtype == np.float32
    for layer, fan_in in ((nn.Linear(50, 400), 50), (nn.Conv2d(3, 200, 5), 75),
                          (nn.ConvTranspose2d(200, 3, 4), 48)):
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and torch's bias rule
        w = layer.weight.data
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
        assert np.abs(layer.bias.data).max() <= bound


def test_state_dict_round_trip():
    bp.manual_seed(0)
    G, D = dcgan(nn)
    z = Tensor(np.random.default_rng(0).standard_normal((4, 6, 1, 1)).astype(np.float32))
    for _ in range(3):
        G(z)  # training mode: running stats move
    sd = G.state_dict()
    assert sd["1.num_batches_tracked"] == 3 and sd["1.running_mean"].dtype == np.float32
    sd["1.running_var"][...] = 7.0  # a copy: the model is untouched
    assert not np.any(G[1].running_var == 7.0)
    sd = G.state_dict()
    bp.manual_seed(1)
    G2, _ = dcgan(nn)
    G2.load_state_dict(sd)
    for k, v in G2.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    G.eval(), G2.eval()
    np.testing.assert_array_equal(G(z).data, G2(z).data)
    np.savez(bytes_io := __import__("io").BytesIO(), **sd)
    bytes_io.seek(0)
    G2.load_state_dict(dict(np.load(bytes_io)))


def test_load_state_dict_errors_are_clear():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    sd = m.state_dict()
    bad = dict(sd)
    del bad["1.running_var"]
    bad["extra.weight"] = np.zeros(2)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: extra.weight"):
        m.load_state_dict(bad)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: 1.running_var"):
        m.load_state_dict(bad)
    result = m.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["1.running_var"] and result.unexpected_keys == ["extra.weight"]
    wrong = dict(sd, **{"0.weight": np.zeros((4, 5))})
    before = m[0].bias.data.copy()
    wrong["0.bias"] = before + 1
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: .*\(4, 5\).*\(4, 3\)"):
        m.load_state_dict(wrong)
    np.testing.assert_array_equal(m[0].bias.data, before)  # nothing copied on error


# --------------------------------------------------------------------- layers vs torch
LAYERS = [
    (lambda n: n.Linear(5, 3), (4, 5)),
    (lambda n: n.Linear(5, 3, bias=False), (2, 4, 5)),
    (lambda n: n.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 9)),
    (lambda n: n.Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(2, 0), bias=False), (2, 2, 6, 7)),
    (lambda n: n.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (2, 3, 5, 5)),
    (lambda n: n.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 4, 4)),
    (lambda n: n.Sequential(n.Flatten(), n.LeakyReLU(0.1), n.Tanh(), n.Sigmoid(), n.ReLU()),
     (3, 2, 2)),
]


@pytest.mark.parametrize("build, xshape", LAYERS)
def test_layer_matches_torch(build, xshape):
    rng = np.random.default_rng(0)
    m_bp = build(nn).double()
    m_t = to_torch(m_bp, build(torch.nn).double())
    x = rng.standard_normal(xshape)
    xb, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yb, yt = m_bp(xb), m_t(xt)
    assert rel_err(yb, yt.detach().numpy()) < TOL
    w = rng.standard_normal(yb.shape)
    (yb * w).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    assert rel_err(xb.grad, xt.grad.numpy()) < TOL
    _grads_agree(m_bp, m_t)


@pytest.mark.parametrize("cls, xshape", [("BatchNorm1d", (8, 3)), ("BatchNorm1d", (4, 3, 5)),
                                         ("BatchNorm2d", (4, 3, 5, 5))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_train_and_eval_match_torch(cls, xshape, momentum):
    rng = np.random.default_rng(0)
    m_bp = getattr(nn, cls)(3, momentum=momentum).double()
    m_t = getattr(torch.nn, cls)(3, momentum=momentum).double()
    m_bp.weight.data[:] = rng.standard_normal(3)
    m_bp.bias.data[:] = rng.standard_normal(3)
    to_torch(m_bp, m_t)
    for step in range(4):
        if step == 3:
            m_bp.eval(), m_t.eval()
        x = rng.standard_normal(xshape) * 2 + 1
        xb, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yb, yt = m_bp(xb), m_t(xt)
        assert rel_err(yb, yt.detach().numpy()) < TOL
        w = rng.standard_normal(yb.shape)
        (yb * w).sum().backward()
        (yt * torch.tensor(w)).sum().backward()
        assert rel_err(xb.grad, xt.grad.numpy()) < TOL
        _grads_agree(m_bp, m_t)
        m_bp.zero_grad(), m_t.zero_grad()
        for k, v in m_t.state_dict().items():
            assert rel_err(m_bp.state_dict()[k], v.numpy()) < TOL, k
    with pytest.raises(ValueError, match="expects"):
        m_bp(Tensor(np.ones((2, 3, 4, 4, 4))))


def test_dropout_module_and_seed():
    m = nn.Dropout(0.5)
    x = Tensor(np.ones((10, 10)))
    bp.manual_seed(3)
    a = m(x).data
    bp.manual_seed(3)
    np.testing.assert_array_equal(a, m(x).data)
    m.eval()
    assert m(x) is x


@pytest.mark.parametrize("build", [mlp_gan, dcgan])
def test_gan_step_gradients_match_torch(build):
    """A whole non-saturating GAN step (D on real + fake, then G) matches torch in float64."""
    bp.manual_seed(0)
    rng = np.random.default_rng(0)
    G, D = (m.double() for m in build(nn))
    Gt, Dt = (to_torch(a, b.double()) for a, b in zip((G, D), build(torch.nn)))
    zshape, xshape = ((5, 8), (5, 12)) if build is mlp_gan else ((5, 6, 1, 1), (5, 1, 28, 28))
    z, real = rng.standard_normal(zshape), rng.uniform(-1, 1, xshape)
    ones, zeros = np.ones((5, 1)), np.zeros((5, 1))
    TF = torch.nn.functional
    for eng, Gm, Dm, f, t in ((bp, G, D, F, Tensor), (torch, Gt, Dt, TF, torch.tensor)):
        fake = Gm(t(z))
        loss_d = (f.binary_cross_entropy_with_logits(Dm(t(real)), t(ones))
                  + f.binary_cross_entropy_with_logits(Dm(fake.detach()), t(zeros)))
        loss_d.backward()
        d_grads = [p.grad.copy() if eng is bp else p.grad.numpy().copy() for p in Dm.parameters()]
        Dm.zero_grad()
        f.binary_cross_entropy_with_logits(Dm(fake), t(ones)).backward()
        if eng is bp:
            ours = (loss_d.item(), d_grads, [p.grad for p in Gm.parameters()])
        else:
            theirs = (loss_d.item(), d_grads, [p.grad.numpy() for p in Gm.parameters()])
    assert abs(ours[0] - theirs[0]) < TOL * abs(theirs[0])
    for a, b in zip(ours[1] + ours[2], theirs[1] + theirs[2]):
        assert rel_err(a, b) < TOL


# --------------------------------------------------------------------- gradient clipping
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2, 2)]]
    ours = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = g.copy(), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert abs(total - total_t.item()) < TOL * total_t.item()
    for o, t in zip(ours, theirs):
        assert rel_err(o.grad, t.grad.numpy()) < TOL


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4, 5))
    o = Tensor(np.zeros_like(g), requires_grad=True)
    t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
    o.grad, t.grad = g.copy(), torch.tensor(g)
    nn.utils.clip_grad_value_([o], 0.3)
    torch.nn.utils.clip_grad_value_([t], 0.3)
    np.testing.assert_array_equal(o.grad, t.grad.numpy())
