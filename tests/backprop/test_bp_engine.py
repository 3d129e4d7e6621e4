"""Engine behaviour of ganforge.backprop that needs no torch: grads, modes, dtypes, imports."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import ganforge.backprop as bp
from ganforge.backprop import Tensor
from ganforge.backprop import functional as F

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_dtypes_follow_torch():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3).dtype == np.int64
    assert Tensor(np.zeros(2)).dtype == np.float64
    for dt in (np.float32, np.float64):
        x = Tensor(np.ones((2, 3), dt), requires_grad=True)
        w = Tensor(np.ones((3, 4), dt), requires_grad=True)
        y = F.leaky_relu(x @ w * 2.0 + 1, 0.2).sigmoid().tanh().mean(dim=0) - 0.5
        y = F.softplus(y.exp().log() ** 2).sum()
        assert y.dtype == dt
        y.backward()
        assert x.grad.dtype == dt and w.grad.dtype == dt


def test_grad_accumulates_and_reuse():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    x.zero_grad()
    assert x.grad is None


def test_no_grad_and_detach():
    x = Tensor(np.ones(3), requires_grad=True)
    with bp.no_grad():
        y = x * 2
        with bp.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad
    assert bp.is_grad_enabled()

    @bp.no_grad()
    def f(t):
        return t * 3
    assert not f(x).requires_grad
    assert not x.detach().requires_grad and x.detach().data is x.data
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_deep_graph_has_no_recursion_limit():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(20000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


def test_diamond_graph_and_retain_grad():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = x.tanh()
    h.retain_grad()
    y = (h * 3 + h.exp() * h).sum()
    y.backward()
    hd = np.tanh(x.data)
    np.testing.assert_allclose(h.grad, 3 + np.exp(hd) * (1 + hd))
    np.testing.assert_allclose(x.grad, h.grad * (1 - hd ** 2))


def test_backward_needs_scalar_or_grad():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2).backward()
    (x * 2).backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(x.grad, 1.0)


def test_helpers():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert x.sum().item() == 15.0
    assert x.numpy() is x.data
    x.zero_()
    assert x.sum().item() == 0.0
    with pytest.raises(TypeError):
        Tensor([1, 2], requires_grad=True)


def test_sigmoid_softplus_are_stable():
    x = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x)
        sp = F.softplus(x)
        (s.sum() + sp.sum()).backward()
    np.testing.assert_allclose(s.data, [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(sp.data, [0.0, 1.9287498479639178e-22, np.log(2), 50.0, 1000.0])
    assert np.all(np.isfinite(x.grad))


def test_import_does_not_load_torch():
    code = "import sys, ganforge.backprop; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_example_runs_and_gradients_agree():
    out = subprocess.run([sys.executable, str(ROOT / "examples/logistic_regression_backprop.py")],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    assert "autograd vs hand gradient" in out
    fd_errors = [float(line.split("backprop rel. error ")[1].split(",")[0])
                 for line in out.splitlines() if "backprop rel. error" in line]
    assert fd_errors and max(fd_errors) < 1e-6


def test_small_network_learns():
    """Two moons-ish data: an MLP trained with Adam drives the loss down (float32)."""
    from ganforge.backprop import nn, optim
    bp.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)  # XOR of the signs
    net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                        nn.Linear(32, 1))
    opt = optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(Tensor(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    assert net[0].weight.dtype == np.float32


def test_conv_input_errors_are_clear():
    from ganforge.backprop import nn
    with pytest.raises(ValueError, match=r"expects input \[N, 3, H, W\], got shape \(2, 4, 5, 5\)"):
        nn.Conv2d(3, 8, 3)(Tensor(np.ones((2, 4, 5, 5), np.float32)))
    with pytest.raises(ValueError, match="conv_transpose2d"):
        nn.ConvTranspose2d(3, 8, 3)(Tensor(np.ones((4, 5, 5), np.float32)))
