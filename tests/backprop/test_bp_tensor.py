"""Tensor ops of ganforge.backprop against torch autograd (float64) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from bp_oracle import check_against_torch, check_finite_diff

import ganforge.backprop as bp
from ganforge.backprop import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def rnd(*shape: int):
    return lambda r: r.standard_normal(shape)


def pos(*shape: int):
    """Positive, away from 0 (log, sqrt, division, pow bases)."""
    return lambda r: r.uniform(0.5, 2.0, shape)


def away(*shape: int):
    """Either sign, away from the kinks at 0 (abs, relu, clip edges)."""
    return lambda r: r.choice([-1.0, 1.0], shape) * r.uniform(0.2, 2.0, shape)


def same(f):
    return f, f


# Shape pairs that exercise broadcasting: leading axes, size-1 axes on either side, scalars.
BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
             ((1,), (2, 3)), ((), (2, 3)), ((2, 1, 4), (2, 3, 1)), ((5, 1, 1), (1,)),
             ((4, 1), (4, 1))]

BINARY = {
    "add": (same(lambda a, b: a + b), rnd, rnd),
    "sub": (same(lambda a, b: a - b), rnd, rnd),
    "mul": (same(lambda a, b: a * b), rnd, rnd),
    "div": (same(lambda a, b: a / b), rnd, pos),
    "pow": (same(lambda a, b: a ** b), pos, rnd),
    "maximum": ((bp.maximum, torch.maximum), rnd, rnd),
    "minimum": ((bp.minimum, torch.minimum), rnd, rnd),
}

CASES = {
    # scalar operands keep the tensor's dtype; reflected ops
    "scalar_ops": (same(lambda x: 2.0 * x - 1.5 / (x * x + 1) + x ** 3 - (3 - x) / 2), [rnd(3, 4)]),
    "rpow": (same(lambda x: 2.0 ** x), [rnd(3, 4)]),
    "neg": (same(lambda x: -x), [rnd(2, 3)]),
    "exp": (same(lambda x: x.exp()), [rnd(2, 3, 4)]),
    "log": (same(lambda x: x.log()), [pos(2, 3, 4)]),
    "sqrt": (same(lambda x: x.sqrt()), [pos(5, 1)]),
    "abs": (same(lambda x: x.abs()), [away(3, 4)]),
    "clip": (same(lambda x: x.clip(-0.5, 0.7)), [away(4, 5)]),
    "clip_min_only": (same(lambda x: x.clamp(min=0.3)), [away(4, 5)]),
    "sum_all": (same(lambda x: x.sum()), [rnd(2, 3, 4)]),
    "sum_axis": (same(lambda x: x.sum(dim=1)), [rnd(2, 3, 4)]),
    "sum_axes_keep": (same(lambda x: x.sum(dim=(0, 2), keepdim=True)), [rnd(2, 3, 4)]),
    "sum_neg_axis": (same(lambda x: x.sum(dim=-1)), [rnd(2, 1, 4)]),
    "mean_all": (same(lambda x: x.mean()), [rnd(2, 3, 4)]),
    "mean_axes": (same(lambda x: x.mean(dim=(0, 2))), [rnd(2, 3, 4)]),
    "mean_keep": (same(lambda x: x.mean(dim=1, keepdim=True)), [rnd(2, 3, 4)]),
    "reshape": (same(lambda x: x.reshape(4, -1) * x.reshape(4, 6)), [rnd(2, 3, 4)]),
    "reshape_view": (same(lambda x: x.view(6, 4)), [rnd(2, 3, 4)]),
    "flatten": (same(lambda x: x.flatten(1)), [rnd(2, 3, 4)]),
    "transpose": (same(lambda x: x.transpose(0, 2)), [rnd(2, 3, 4)]),
    "permute": (same(lambda x: x.permute(2, 0, 1)), [rnd(2, 3, 4)]),
    "T": (same(lambda x: x.T), [rnd(3, 5)]),
    "getitem_slice": (same(lambda x: x[1:, ::2]), [rnd(4, 5)]),
    "getitem_int": (same(lambda x: x[1]), [rnd(4, 5)]),
    "getitem_neg_ellipsis": (same(lambda x: x[..., -1]), [rnd(2, 3, 4)]),
    "getitem_none": (same(lambda x: x[:, None, 1:3]), [rnd(4, 5)]),
    "getitem_fancy_repeats": ((lambda x: x[np.array([0, 2, 0, 0])],
                               lambda x: x[torch.tensor([0, 2, 0, 0])]), [rnd(3, 5)]),
    "getitem_pairs": ((lambda x: x[np.array([0, 1, 1]), np.array([2, 2, 2])],
                       lambda x: x[torch.tensor([0, 1, 1]), torch.tensor([2, 2, 2])]), [rnd(3, 5)]),
    "getitem_mixed": ((lambda x: x[1:, np.array([3, 3, 0])],
                       lambda x: x[1:, torch.tensor([3, 3, 0])]), [rnd(3, 5)]),
    "getitem_mask": ((lambda x: x[x.data > 0], lambda x: x[x > 0]), [away(4, 5)]),
    "cat": ((lambda a, b, c: bp.cat([a, b, c], 1), lambda a, b, c: torch.cat([a, b, c], 1)),
            [rnd(2, 1, 3), rnd(2, 4, 3), rnd(2, 2, 3)]),
    "cat_reuse": ((lambda a: bp.cat([a, a * 2], 0), lambda a: torch.cat([a, a * 2], 0)),
                  [rnd(2, 3)]),
    "stack": ((lambda a, b: bp.stack([a, b], 1), lambda a, b: torch.stack([a, b], 1)),
              [rnd(2, 3), rnd(2, 3)]),
    "where": ((lambda a, b: bp.where(a.data > 0, a, b), lambda a, b: torch.where(a > 0, a, b)),
              [away(3, 4), rnd(4)]),
    "matmul_2d": (same(lambda a, b: a @ b), [rnd(3, 4), rnd(4, 5)]),
    "matmul_batched": (same(lambda a, b: a @ b), [rnd(2, 3, 4), rnd(2, 4, 5)]),
    "matmul_bcast_batch": (same(lambda a, b: a @ b), [rnd(2, 1, 3, 4), rnd(5, 4, 2)]),
    "matmul_mat_batch": (same(lambda a, b: a @ b), [rnd(3, 4), rnd(2, 4, 5)]),
    "matmul_vec_mat": (same(lambda a, b: a @ b), [rnd(4), rnd(4, 5)]),
    "matmul_mat_vec": (same(lambda a, b: a @ b), [rnd(3, 4), rnd(4)]),
    "matmul_vec_vec": (same(lambda a, b: a @ b), [rnd(4), rnd(4)]),
    "matmul_vec_batch": (same(lambda a, b: a @ b), [rnd(4), rnd(2, 4, 3)]),
    "matmul_batch_vec": (same(lambda a, b: a @ b), [rnd(2, 3, 4), rnd(4)]),
    "matmul_size1": (same(lambda a, b: a @ b), [rnd(1, 1, 4), rnd(3, 4, 1)]),
    "relu": ((F.relu, TF.relu), [away(3, 4)]),
    "leaky_relu": ((lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
                   [away(3, 4)]),
    "sigmoid": ((F.sigmoid, torch.sigmoid), [lambda r: r.standard_normal((3, 4)) * 5]),
    "tanh": ((F.tanh, torch.tanh), [lambda r: r.standard_normal((3, 4)) * 3]),
    "softplus": ((F.softplus, TF.softplus), [lambda r: r.standard_normal((3, 4)) * 5]),
    "log_softmax": ((lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
                    [lambda r: r.standard_normal((4, 5)) * 5]),
    "softmax_axis0": ((lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)), [rnd(4, 5)]),
    "cast_roundtrip": (same(lambda x: x.float().double() * 0 + x), [rnd(3)]),
    "detach": (same(lambda x: x * x.detach()), [rnd(3, 2)]),
}


def _binary_params():
    for name, ((f_bp, f_t), da, db) in BINARY.items():
        for sa, sb in BROADCAST:
            yield pytest.param(f_bp, f_t, [da(*sa), db(*sb)], id=f"{name}-{sa}-{sb}")
            yield pytest.param(f_bp, f_t, [da(*sb), db(*sa)], id=f"{name}-{sb}-{sa}")


def _case_params():
    for name, ((f_bp, f_t), makers) in CASES.items():
        yield pytest.param(f_bp, f_t, makers, id=name)


ALL = list(_binary_params()) + list(_case_params())
# detach() deliberately hides a dependence, so differences disagree with autograd there.
FD = [p for p in ALL if p.id != "detach"]


@pytest.mark.parametrize("f_bp, f_t, makers", ALL)
def test_op_matches_torch(f_bp, f_t, makers):
    rng = np.random.default_rng(0)
    check_against_torch(f_bp, f_t, [m(rng) for m in makers], rng)


@pytest.mark.parametrize("f_bp, f_t, makers", FD)
def test_op_matches_finite_differences(f_bp, f_t, makers):
    rng = np.random.default_rng(1)
    check_finite_diff(f_bp, [m(rng) for m in makers], rng)
