"""Optimisers and lr schedules of ganforge.backprop against torch.optim, 50 steps in float64."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from bp_oracle import rel_err

from ganforge.backprop import Tensor, optim
from ganforge.backprop.optim import lr_scheduler

torch = pytest.importorskip("torch")
TOL = 1e-10
STEPS = 50
SHAPES = [(3, 4), (5,), (2, 1, 3)]

OPTIMISERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5,
                     eps=1e-8)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, centered=True)),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=1e-2, momentum=0.5,
                     centered=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),
    ("Adam", dict(lr=1e-2, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, betas=(0.3, 0.9))),
]


def _pair(name: str, kwargs: dict, rng: np.random.Generator, groups: bool = False):
    """The same parameters under our optimiser and torch's."""
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [Tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    if groups:  # two groups, the second with its own lr
        ours = [{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5 * kwargs.get("lr", 1e-2)}]
        theirs = [{"params": theirs[:2]},
                  {"params": theirs[2:], "lr": 0.5 * kwargs.get("lr", 1e-2)}]
    return (getattr(optim, name)(ours, **kwargs),
            getattr(torch.optim, name)(theirs, foreach=False, **kwargs))


def _feed(opt_bp, opt_t, rng):
    """The same random gradients to both."""
    for gb, gt in zip(opt_bp.param_groups, opt_t.param_groups):
        for pb, pt in zip(gb["params"], gt["params"]):
            g = rng.standard_normal(pb.shape)
            pb.grad, pt.grad = g, torch.tensor(g)


def _params_agree(opt_bp, opt_t):
    for gb, gt in zip(opt_bp.param_groups, opt_t.param_groups):
        for pb, pt in zip(gb["params"], gt["params"]):
            err = rel_err(pb.data, pt.detach().numpy())
            assert err < TOL, f"relative error {err:.2e}"


@pytest.mark.parametrize("name, kwargs", OPTIMISERS, ids=lambda v: str(v))
def test_optimiser_matches_torch(name, kwargs):
    rng = np.random.default_rng(0)
    opt_bp, opt_t = _pair(name, kwargs, rng)
    for _ in range(STEPS):
        _feed(opt_bp, opt_t, rng)
        opt_bp.step()
        opt_t.step()
        _params_agree(opt_bp, opt_t)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_param_groups_and_state_dict_resume(name):
    """Two groups with their own lr; halfway, a fresh optimiser resumes from state_dict."""
    kwargs = dict(OPTIMISERS[[n for n, _ in OPTIMISERS].index(name) + 1][1])
    rng = np.random.default_rng(1)
    opt_bp, opt_t = _pair(name, kwargs, rng, groups=True)
    for step in range(STEPS):
        if step == STEPS // 2:
            saved = copy.deepcopy(opt_bp.state_dict())
            assert set(saved["state"]) == {0, 1, 2}
            assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]
            fresh = getattr(optim, name)([{"params": g["params"]} for g in opt_bp.param_groups],
                                         **dict(kwargs, lr=123.0))
            fresh.load_state_dict(saved)
            assert fresh.param_groups[1]["lr"] == opt_bp.param_groups[1]["lr"]
            opt_bp = fresh
        _feed(opt_bp, opt_t, rng)
        opt_bp.step()
        opt_t.step()
        _params_agree(opt_bp, opt_t)
    # our state_dict has torch's layout: torch loads it (arrays as tensors)
    sd = opt_bp.state_dict()
    state = {i: {k: torch.tensor(v) for k, v in s.items() if v is not None}
             for i, s in sd["state"].items()}
    opt_t.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def test_zero_grad_and_mismatched_state():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(3)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, 0)
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no grad: nothing happens
    np.testing.assert_array_equal(p.data, 1)
    other = optim.SGD([p, Tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="match the size"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [p]}, {"params": [p]}])


def test_float32_stays_float32():
    p = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    for cls in (optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW):
        opt = cls([p], lr=0.1)
        p.grad = np.full((2, 3), 0.5, np.float32)
        opt.step()
        assert p.data.dtype == np.float32
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))


# --------------------------------------------------------------------- schedules
SCHEDULES = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.95)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=1e-3)),  # several periods: all branches
    ("CosineAnnealingLR", dict(T_max=50)),
    ("LinearLR", dict(start_factor=0.25, total_iters=20)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=30)),
    ("LambdaLR", dict(lr_lambda=lambda e: 1 / (1 + e))),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=lambda v: str(v))
def test_schedule_matches_torch(name, kwargs):
    p_bp, p_t = Tensor(np.ones(2), requires_grad=True), torch.ones(2, requires_grad=True)
    opt_bp = optim.SGD([p_bp], lr=0.1)
    opt_t = torch.optim.SGD([p_t], lr=0.1)
    s_bp = getattr(lr_scheduler, name)(opt_bp, **kwargs)
    s_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kwargs)
    assert s_bp.get_last_lr() == s_t.get_last_lr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(STEPS):
            opt_bp.step()
            opt_t.step()
            s_bp.step()
            s_t.step()
            for a, b in zip(s_bp.get_last_lr(), s_t.get_last_lr()):
                assert abs(a - b) <= TOL * abs(b), (step, a, b)
            assert opt_bp.param_groups[0]["lr"] == s_bp.get_last_lr()[0]
            if step == 20:  # resume as torch does: build both, then load both states
                opt2 = optim.SGD([p_bp], lr=0.1)
                s2 = getattr(lr_scheduler, name)(opt2, **kwargs)
                opt2.load_state_dict(opt_bp.state_dict())
                s2.load_state_dict(s_bp.state_dict())
                opt_bp, s_bp = opt2, s2


def test_schedules_reach_documented_values():
    opt = optim.SGD([Tensor(np.ones(1), requires_grad=True)], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0],
                               atol=1e-15)
