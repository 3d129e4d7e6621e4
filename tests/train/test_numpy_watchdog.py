"""The divergence watchdog on the numpy engine (`--engine numpy`): the torch trainer's Watchdog, same behaviour.

Mirrors tests/train/test_reliability_watchdog.py: NaN/inf caught in the step it happens, rollback to the last good
checkpoint (or the start state) with a lower lr, DivergedError (exit 3) after watchdog.max_rollbacks.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ganforge import stats
from ganforge.errors import DivergedError
from ganforge.run import RunDir, read_stats
from ganforge.run import load_checkpoint
from ganforge.train import Trainer as NumpyTrainer
from ganforge.train.optim import lr_at

from helpers import tiny_config
from test_reliability_watchdog import capture_log, check_lowered_lr_survives_resume, inject

NUMPY = {"train.engine": "numpy", "model.arch": "mlp"}


def numpy_config(**sets):
    return tiny_config(**{**NUMPY, **sets})


def poison(trainer: NumpyTrainer, plan: dict[tuple[int, str], str], once: bool = True) -> list[int]:
    """Make a phase misbehave at (step, phase): 'grad' -> a NaN gradient entry, 'loss' -> an inf loss report.

    Returns the steps at which a fault was injected (to count the attempts).
    """
    inner = trainer.engine.accumulate_gradients
    fired: list[int] = []

    def wrapped(phase, real, z):
        inner(phase, real, z)
        inject(trainer, phase, trainer.D if phase == "D" else trainer.G, plan, once, fired)

    trainer.engine.accumulate_gradients = wrapped
    return fired


def weights(t: NumpyTrainer) -> list[np.ndarray]:
    return [v.copy() for v in (*t.G.state_dict().values(), *t.D.state_dict().values())]


def make_run(tmp_path, name="run") -> RunDir:
    run = RunDir(tmp_path / name)
    run.create()
    return run


def test_nan_gradient_rolls_back_to_the_last_checkpoint_bit_exactly(tmp_path):
    """A NaN gradient in D at step 5: back to the step-4 checkpoint, lr halved; the result equals a clean run that
    trained 4 steps and then continued with half the learning rate (oracle), and the lower lr persists."""
    sets = {"train.steps": 8, "log.checkpoint_every": 2}
    t = NumpyTrainer(numpy_config(**sets))
    fired = poison(t, {(5, "D"): "grad"})
    logged = capture_log()
    run = make_run(tmp_path, "poisoned")
    t.train(run)
    assert fired == [5] and t.step == 8

    recs = read_stats(run.stats)
    events = [r for r in recs if "event" in r]
    assert len(events) == 1
    ev = events[0]
    assert ev["event"] == "rollback" and ev["failed_step"] == 5 and ev["step"] == 4 and ev["rollback"] == 1
    assert ev["max_rollbacks"] == 3 and ev["lr_scale"] == 0.5 and ev["restored_from"].endswith("last.pt")
    # D's loss was finite; the NaN gradient made D's weights NaN, so G's phase after it is NaN too
    assert ev["reason"] == "gradient norm of D = nan, gradient norm of G = nan, loss/G = nan"
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 4, 5, 6, 7, 8]  # the bad step's record is never written
    base = numpy_config(**sets).g_optim.lr
    assert [r["lr/G"] for r in recs if "event" not in r] == pytest.approx([base] * 4 + [base / 2] * 4, rel=1e-12)
    assert [r["lr/D"] for r in recs if "event" not in r] == pytest.approx([base] * 4 + [base / 2] * 4, rel=1e-12)
    assert "rollback 1 of 3 to step 4" in "\n".join(logged)
    assert all(np.isfinite(w).all() for w in weights(t))

    # Oracle: 4 clean steps, then 4 more at half the learning rate.
    ref_dir = make_run(tmp_path, "reference")
    NumpyTrainer(numpy_config(**{**sets, "train.steps": 4})).train(ref_dir)
    half = NumpyTrainer(numpy_config(**{**sets, "g_optim.lr": base / 2, "d_optim.lr": base / 2}))
    half.resume_from(ref_dir)
    assert half.step == 4
    half.train(ref_dir)
    for a, b in zip(weights(t), weights(half)):
        np.testing.assert_array_equal(a, b)
    # ... and the rollback mattered: 8 clean steps at the full lr end elsewhere.
    full = NumpyTrainer(numpy_config(**sets))
    full.train(make_run(tmp_path, "full"))
    assert any(not np.array_equal(a, b) for a, b in zip(weights(t), weights(full)))

    # The lowered lr is in the checkpoint and survives a resume.
    check_lowered_lr_survives_resume(lambda sets: NumpyTrainer(numpy_config(**sets)), run, sets, base)


def test_an_inf_loss_before_the_first_checkpoint_rolls_back_to_the_start_and_keeps_the_schedule(tmp_path):
    """Only the reported loss is inf (gradients finite): still caught; no checkpoint yet -> the in-memory start.
    With a cosine schedule the lowered lr is lr_at(step) * 0.5 at every later step."""
    sets = {"train.steps": 6, "log.checkpoint_every": 100, "g_optim.schedule": "cosine", "d_optim.schedule": "cosine"}
    cfg = numpy_config(**sets)
    t = NumpyTrainer(cfg)
    start = weights(t)
    start_rng = t.rng.bit_generator.state
    fired = poison(t, {(3, "G"): "loss"})
    run = make_run(tmp_path)
    seen = {}
    rollback = t.watchdog.rollback

    def spy(trainer, reason):  # the state right after the restore
        rollback(trainer, reason)
        seen["weights"] = weights(trainer)
        seen["step"] = trainer.step
        seen["rng"] = trainer.rng.bit_generator.state

    t.watchdog.rollback = spy
    t.train(run)
    assert fired == [3] and t.step == 6 and seen["step"] == 0 and seen["rng"] == start_rng
    for a, b in zip(start, seen["weights"]):
        np.testing.assert_array_equal(a, b)
    recs = read_stats(run.stats)
    ev = [r for r in recs if r.get("event") == "rollback"]
    assert len(ev) == 1 and ev[0]["restored_from"] == "start state" and ev[0]["reason"] == "loss/G = inf"
    assert ev[0]["step"] == 0 and ev[0]["failed_step"] == 3
    steps = [r for r in recs if "event" not in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [r["lr/G"] for r in steps] == pytest.approx([lr_at(cfg.g_optim, s - 1, 6) * 0.5 for s in range(1, 7)], rel=1e-12)
    assert all(np.isfinite(w).all() for w in weights(t))
    assert load_checkpoint(run.last)["watchdog"] == {"rollbacks": 1}


@pytest.mark.parametrize("k", [0, 2])
def test_persistent_nan_stops_after_k_rollbacks_and_never_loops(tmp_path, k):
    t = NumpyTrainer(numpy_config(**{"train.steps": 5, "log.checkpoint_every": 100, "watchdog.max_rollbacks": k}))
    fired = poison(t, {(2, "G"): "grad"}, once=False)
    run = make_run(tmp_path)
    with pytest.raises(DivergedError, match=rf"diverged at step 2 \(gradient norm of G = nan\) after {k} rollback"):
        t.train(run)
    assert fired == [2] * (k + 1)  # one first failure plus k retries, then stop
    recs = read_stats(run.stats)
    assert [r.get("event") for r in recs if "event" in r] == ["rollback"] * k + ["diverged"]
    assert [r["lr_scale"] for r in recs if r.get("event") == "rollback"] == [0.5**i for i in range(1, k + 1)]
    assert recs[-1] == {"step": 2, "event": "diverged", "reason": "gradient norm of G = nan", "rollbacks": k}
    assert not run.last.exists()


def test_real_divergence_from_the_cli_exits_3_with_one_line(tmp_path, run_cli):
    """No injection: SGD with lr 1e30 overflows the numpy engine's float32 maths in step 1."""
    run = tmp_path / "run"
    argv = ["train", "--engine", "numpy", "--steps", "5", "--arch", "mlp", "--optimizer", "sgd", "--lr", "1e30",
            "--quiet", "--no-report", "--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8",
            "--z-dim", "8", "--batch-size", "8", "--set", "log.log_every=1"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(*argv, "--out", run, "--set", "watchdog.max_rollbacks=2")
    assert code == 3, err
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]  # no numpy overflow warnings either
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "training diverged at step 1" in lines[0] and "after 2 rollback(s)" in lines[0], err
    recs = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["event"] for r in recs] == ["rollback", "rollback", "diverged"]
    assert [r["lr_scale"] for r in recs[:2]] == [0.5, 0.25] and recs[0]["restored_from"] == "start state"
    log = (run / "log.txt").read_text()
    assert log.count("rollback") >= 2 and "training diverged" in log and "numpy engine" in log

    # The same run with the watchdog off trains on through the NaNs: exit 0, NaN losses, no events, and numpy's
    # own overflow warnings (the check above is not vacuous).
    off = tmp_path / "off"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run_cli(*argv, "--out", off, "--set", "watchdog.enabled=false")
    assert code == 0, err
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)]
    recs = [json.loads(line) for line in (off / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5] and not any("event" in r for r in recs)
    assert recs[-1]["loss/G"] == "nan"  # stats.jsonl writes non-finite numbers as strings


def test_watchdog_disabled_leaves_it_off(tmp_path):
    t = NumpyTrainer(numpy_config(**{"train.steps": 4, "log.checkpoint_every": 2, "watchdog.enabled": False}))
    fired = poison(t, {(2, "D"): "grad"})
    run = make_run(tmp_path)
    t.train(run)
    assert fired == [2] and t.step == 4
    recs = read_stats(run.stats)
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and not any("event" in r for r in recs)
    assert not all(np.isfinite(w).all() for w in weights(t))  # the NaN went into the weights, unchecked
    assert load_checkpoint(run.last)["watchdog"] == {"rollbacks": 0} and t.watchdog.pending.items == []


def test_the_weight_check_runs_on_checkpoint_steps_only(tmp_path):
    """A checkpoint is never written from non-finite weights (the numpy parameters' arrays are checked)."""
    t = NumpyTrainer(numpy_config())
    t.run = RunDir(tmp_path / "run")
    stats.collect()  # nothing pending from earlier tests
    next(iter(t.G.parameters())).data.fill(np.inf)
    assert t.watchdog.bad_step(t, weights=False) is None
    assert t.watchdog.bad_step(t, weights=True) == "weight norm of G = inf"


def test_train_step_on_its_own_queues_no_checks():
    """Outside train() (tests, notebooks looping over train_step) nothing accumulates in the watchdog."""
    t = NumpyTrainer(numpy_config())
    for _ in range(3):
        t.train_step()
    assert t.watchdog.pending.items == [] and t.step == 3
    stats.collect()
