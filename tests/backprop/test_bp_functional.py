"""Layers' maths and losses of ganforge.backprop.functional against torch and differences."""

from __future__ import annotations

import numpy as np
import pytest

from bp_oracle import check_against_torch, check_finite_diff, rel_err

from ganforge.backprop import Tensor
from ganforge.backprop import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _r(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------- losses
LOSSES = {
    "bce_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits),
    "mse": (F.mse_loss, TF.mse_loss),
    "l1": (F.l1_loss, TF.l1_loss),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("shapes", [((6, 1), (6, 1)), ((3, 4), (3, 4)), ((5,), (5,))])
def test_loss_matches_torch(name, reduction, shapes):
    rng = _r()
    f_bp, f_t = LOSSES[name]
    x = rng.standard_normal(shapes[0]) * 4
    y = rng.uniform(0, 1, shapes[1]) if name == "bce_logits" else rng.standard_normal(shapes[1])
    check_against_torch(lambda a, b: f_bp(a, b, reduction=reduction),
                        lambda a, b: f_t(a, b, reduction=reduction), [x, y], rng)
    check_finite_diff(lambda a, b: f_bp(a, b, reduction=reduction), [x, y], rng)


def test_bce_weights_match_torch():
    rng = _r()
    x, y = rng.standard_normal((4, 3)) * 3, rng.integers(0, 2, (4, 3)).astype(float)
    w, pw = rng.uniform(0.5, 2, (3,)), rng.uniform(0.5, 3, (3,))
    check_against_torch(
        lambda a: F.binary_cross_entropy_with_logits(a, y, weight=w, pos_weight=pw),
        lambda a: TF.binary_cross_entropy_with_logits(a, torch.tensor(y), weight=torch.tensor(w),
                                                      pos_weight=torch.tensor(pw)), [x], rng)


def test_bce_with_logits_is_stable():
    x = Tensor(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]), requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [800.0, 4.248354255291589e-18, np.log(2),
                                           4.248354255291589e-18, 800.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad, [-1.0, 0.0, -0.5, 0.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    rng = _r()
    logits = rng.standard_normal((7, 5)) * 10
    target = rng.integers(0, 5, 7)
    f_bp = lambda a: F.cross_entropy(a, target, reduction=reduction)  # noqa: E731
    check_against_torch(f_bp, lambda a: TF.cross_entropy(a, torch.tensor(target),
                                                         reduction=reduction), [logits], rng)
    check_finite_diff(f_bp, [logits], rng)
    with pytest.raises(TypeError):
        F.cross_entropy(Tensor(logits), target.astype(float))


def test_cross_entropy_is_stable():
    logits = Tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.cross_entropy(logits, np.array([2]))
        loss.backward()
    assert loss.item() == 2000.0
    np.testing.assert_allclose(logits.grad, [[1.0, 0.0, -1.0]])


# --------------------------------------------------------------------- linear
@pytest.mark.parametrize("xshape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(xshape, bias):
    rng = _r()
    arrays = [rng.standard_normal(xshape), rng.standard_normal((4, 3))]
    if bias:
        arrays.append(rng.standard_normal(4))
    check_against_torch(F.linear, TF.linear, arrays, rng)
    check_finite_diff(F.linear, arrays, rng)


# --------------------------------------------------------------------- convolutions
# (input shape [N, C, H, W], out channels, kernel, stride, padding)
CONV = [
    ((2, 3, 7, 7), 4, 3, 1, 0),
    ((2, 3, 8, 8), 4, 4, 2, 1),
    ((1, 2, 9, 7), 3, 3, 2, 0),
    ((2, 2, 10, 9), 3, 5, 3, 2),
    ((2, 3, 5, 5), 2, 1, 1, 1),
    ((1, 2, 7, 6), 3, (3, 2), (2, 1), (0, 1)),
    ((2, 4, 7, 7), 1, 7, 1, 0),
    ((1, 1, 4, 4), 2, 4, 1, 2),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape, cout, k, s, p", CONV)
def test_conv2d_matches_torch(xshape, cout, k, s, p, bias):
    rng = _r()
    kh, kw = (k, k) if isinstance(k, int) else k
    arrays = [rng.standard_normal(xshape), rng.standard_normal((cout, xshape[1], kh, kw))]
    if bias:
        arrays.append(rng.standard_normal(cout))
    check_against_torch(lambda *a: F.conv2d(*a, stride=s, padding=p),
                        lambda *a: TF.conv2d(*a, stride=s, padding=p), arrays, rng)


# (input shape [N, Cin, H, W], out channels, kernel, stride, padding, output_padding)
CONVT = [
    ((2, 3, 4, 4), 2, 3, 1, 0, 0),
    ((2, 3, 5, 5), 4, 4, 2, 1, 0),
    ((1, 2, 3, 4), 3, 3, 2, 0, 1),
    ((2, 2, 4, 3), 3, 5, 3, 2, 2),
    ((2, 5, 1, 1), 3, 7, 1, 0, 0),
    ((1, 2, 4, 5), 3, (3, 2), (2, 1), (1, 0), (1, 0)),
    ((2, 3, 3, 3), 2, 1, 1, 0, 0),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape, cout, k, s, p, op", CONVT)
def test_conv_transpose2d_matches_torch(xshape, cout, k, s, p, op, bias):
    rng = _r()
    kh, kw = (k, k) if isinstance(k, int) else k
    arrays = [rng.standard_normal(xshape), rng.standard_normal((xshape[1], cout, kh, kw))]
    if bias:
        arrays.append(rng.standard_normal(cout))
    check_against_torch(lambda *a: F.conv_transpose2d(*a, stride=s, padding=p, output_padding=op),
                        lambda *a: TF.conv_transpose2d(*a, stride=s, padding=p, output_padding=op),
                        arrays, rng)


@pytest.mark.parametrize("s, p", [(1, 0), (2, 1), (2, 2)])
def test_convolutions_match_finite_differences(s, p):
    rng = _r()
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    check_finite_diff(lambda *a: F.conv2d(*a, stride=s, padding=p), [x, w, b], rng)
    x, w = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 3, 3, 3))
    check_finite_diff(lambda *a: F.conv_transpose2d(*a, stride=s, padding=p), [x, w, b], rng)


def test_conv_float32_stays_float32():
    rng = _r()
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 4, 4)).astype(np.float32), requires_grad=True)
    wt = Tensor(rng.standard_normal((4, 2, 4, 4)).astype(np.float32), requires_grad=True)
    y = F.conv_transpose2d(F.conv2d(x, w, stride=2, padding=1), wt, stride=2, padding=1)
    assert y.shape == (2, 2, 8, 8) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == wt.grad.dtype == np.float32


# --------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("xshape", [(6, 3), (4, 3, 5), (3, 2, 4, 5)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch(xshape, training, affine):
    rng = _r()
    c = xshape[1]
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    arrays = [rng.standard_normal(xshape) * 3 + 1]
    if affine:
        arrays += [rng.standard_normal(c), rng.standard_normal(c)]
    rm_bp, rv_bp, rm_t, rv_t = rm.copy(), rv.copy(), torch.tensor(rm), torch.tensor(rv)
    check_against_torch(
        lambda *a: F.batch_norm(a[0], rm_bp, rv_bp, *a[1:], training=training, momentum=0.1),
        lambda *a: TF.batch_norm(a[0], rm_t, rv_t, *a[1:], training=training, momentum=0.1),
        arrays, rng)
    assert rel_err(rm_bp, rm_t.numpy()) < 1e-10 and rel_err(rv_bp, rv_t.numpy()) < 1e-10
    if training:
        assert not np.allclose(rm_bp, rm)  # the running stats moved
    rm2, rv2 = rm.copy(), rv.copy()
    check_finite_diff(lambda *a: F.batch_norm(a[0], rm2.copy(), rv2.copy(), *a[1:],
                                              training=training), arrays, rng)


# --------------------------------------------------------------------- dropout
def test_dropout():
    rng = np.random.default_rng(0)
    x = Tensor(np.ones((200, 100)), requires_grad=True)
    y = F.dropout(x, 0.3, training=True, rng=rng)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    assert np.all(F.dropout(x, 1.0).data == 0)
