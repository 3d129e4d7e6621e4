"""The divergence watchdog: NaN/inf caught in the step it happens, rollback with a lower lr, at most K times."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from ganforge import stats
from ganforge.errors import DivergedError
from ganforge.run import RunDir, read_stats
from ganforge.train import Trainer
from ganforge.run import load_checkpoint
from ganforge.train.optim import lr_at

from helpers import tiny_config


def poison(trainer: Trainer, plan: dict[tuple[int, str], str], once: bool = True) -> list[int]:
    """Make the objective misbehave at (step, phase): 'grad' -> NaN gradients, 'loss' -> an inf loss report.

    Returns the list of steps at which a fault was injected (to count the attempts).
    """
    inner = trainer.objective.accumulate_gradients
    fired: list[int] = []

    def wrapped(phase, G, D, real, labels, z):
        inner(phase, G, D, real, labels, z)
        inject(trainer, phase, D if phase == "D" else G, plan, once, fired)

    trainer.objective.accumulate_gradients = wrapped
    return fired


def inject(trainer, phase: str, net, plan: dict[tuple[int, str], str], once: bool, fired: list[int]) -> None:
    """The fault `plan` holds for (the step being computed, phase), if any, after the phase's backward
    (both engines: `net` is a torch module or a ganforge.backprop one, whose .grad is a numpy array)."""
    step = trainer.step + 1  # the step being computed, as stats.jsonl numbers it
    what = plan.get((step, phase))
    if what is None:
        return
    if once:
        del plan[(step, phase)]
    fired.append(step)
    if what == "grad":
        p = next(p for p in net.parameters() if p.grad is not None)
        p.grad[(0,) * p.grad.ndim] = float("nan")
    elif what == "loss":
        stats.report(f"loss/{phase}", float("inf"))


def check_lowered_lr_survives_resume(make_trainer, run: RunDir, sets: dict, base: float) -> None:
    """After one rollback: the count is in the checkpoint, and a resume to 10 steps trains on at half the lr."""
    state = load_checkpoint(run.last)
    assert state["watchdog"] == {"rollbacks": 1}
    again = make_trainer({**sets, "train.steps": 10})
    assert again.watchdog.lr_scale == 1.0
    again.resume_from(run)
    assert again.watchdog.lr_scale == 0.5
    again.train(run)
    assert [r["lr/G"] for r in read_stats(run.stats) if r.get("step", 0) > 8] == pytest.approx([base / 2] * 2, rel=1e-12)


def capture_log() -> list[str]:
    """Messages of the 'ganforge' logger from now on (the CLI turns its propagation off, so caplog misses them)."""
    lines: list[str] = []

    class H(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger("ganforge")
    logger.setLevel(logging.INFO)
    logger.addHandler(H())
    return lines


def weights(t: Trainer) -> list[torch.Tensor]:
    return list(t.G.state_dict().values()) + list(t.D.state_dict().values())


def test_nan_gradient_rolls_back_to_the_last_checkpoint_bit_exactly(tmp_path):
    """A NaN gradient in D at step 5: back to the step-4 checkpoint, lr halved; the result equals a clean run
    that trained 4 steps and then continued with half the learning rate (oracle), and the lower lr persists."""
    sets = {"train.steps": 8, "log.checkpoint_every": 2, "model.arch": "mlp"}
    t = Trainer(tiny_config(**sets))
    fired = poison(t, {(5, "D"): "grad"})
    logged = capture_log()
    run = RunDir(tmp_path / "poisoned")
    run.create()
    t.train(run)
    assert fired == [5] and t.step == 8

    recs = read_stats(run.stats)
    events = [r for r in recs if "event" in r]
    assert len(events) == 1
    ev = events[0]
    assert ev["event"] == "rollback" and ev["failed_step"] == 5 and ev["step"] == 4 and ev["rollback"] == 1
    assert ev["lr_scale"] == 0.5 and ev["restored_from"].endswith("last.pt") and "gradient norm of D = nan" in ev["reason"]
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 4, 5, 6, 7, 8]  # the bad step's record is never written
    base = tiny_config(**sets).g_optim.lr
    assert [r["lr/G"] for r in recs if "event" not in r] == pytest.approx([base] * 4 + [base / 2] * 4, rel=1e-12)
    assert "rollback 1 of 3 to step 4" in "\n".join(logged)

    # Oracle: 4 clean steps, then 4 more at half the learning rate.
    ref_dir = RunDir(tmp_path / "reference")
    ref_dir.create()
    Trainer(tiny_config(**{**sets, "train.steps": 4})).train(ref_dir)
    half = Trainer(tiny_config(**{**sets, "g_optim.lr": base / 2, "d_optim.lr": base / 2}))
    half.resume_from(ref_dir)
    half.train(ref_dir)
    for a, b in zip(weights(t), weights(half)):
        assert torch.equal(a, b)

    # The lowered lr is in the checkpoint and survives a resume.
    check_lowered_lr_survives_resume(lambda sets: Trainer(tiny_config(**sets)), run, sets, base)


def test_an_inf_loss_before_the_first_checkpoint_rolls_back_to_the_start_and_keeps_the_schedule(tmp_path):
    """Only the reported loss is inf (gradients finite): still caught; no checkpoint yet -> the in-memory start.
    With a cosine schedule the lowered lr is lr_at(step) * 0.5 at every later step."""
    sets = {"train.steps": 6, "log.checkpoint_every": 100, "g_optim.schedule": "cosine", "d_optim.schedule": "cosine"}
    cfg = tiny_config(**sets)
    t = Trainer(cfg)
    start = [w.clone() for w in weights(t)]
    fired = poison(t, {(3, "G"): "loss"})
    run = RunDir(tmp_path / "run")
    run.create()
    # Check the restore itself: stop right after the rollback and compare with the start weights.
    seen = {}
    rollback = t.watchdog.rollback

    def spy(trainer, reason):
        rollback(trainer, reason)
        seen["weights"] = [w.clone() for w in weights(trainer)]
        seen["step"] = trainer.step

    t.watchdog.rollback = spy
    t.train(run)
    assert fired == [3] and t.step == 6 and seen["step"] == 0
    for a, b in zip(start, seen["weights"]):
        assert torch.equal(a, b)
    recs = read_stats(run.stats)
    ev = [r for r in recs if r.get("event") == "rollback"]
    assert len(ev) == 1 and ev[0]["restored_from"] == "start state" and ev[0]["reason"] == "loss/G = inf"
    steps = [r for r in recs if "event" not in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert [r["lr/G"] for r in steps] == pytest.approx([lr_at(cfg.g_optim, s - 1, 6) * 0.5 for s in range(1, 7)], rel=1e-12)
    assert all(torch.isfinite(w).all() for w in weights(t))


@pytest.mark.parametrize("k", [0, 2])
def test_persistent_nan_stops_after_k_rollbacks_and_never_loops(tmp_path, k):
    t = Trainer(tiny_config(**{"train.steps": 5, "log.checkpoint_every": 100, "watchdog.max_rollbacks": k}))
    fired = poison(t, {(2, "G"): "grad"}, once=False)
    run = RunDir(tmp_path / "run")
    run.create()
    with pytest.raises(DivergedError, match=rf"diverged at step 2 \(gradient norm of G = nan\) after {k} rollback"):
        t.train(run)
    assert fired == [2] * (k + 1)  # one first failure plus k retries, then stop
    recs = read_stats(run.stats)
    assert [r.get("event") for r in recs if "event" in r] == ["rollback"] * k + ["diverged"]
    assert [r["lr_scale"] for r in recs if r.get("event") == "rollback"] == [0.5**i for i in range(1, k + 1)]
    assert not run.last.exists()


def test_real_divergence_from_the_cli_exits_3_with_one_line(tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli(
        "train", "--out", run, "--steps", "5", "--arch", "mlp", "--optimizer", "sgd", "--lr", "1e30", "--quiet",
        "--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.log_every=1", "--set", "watchdog.max_rollbacks=2",
    )
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "training diverged at step 1" in lines[0] and "after 2 rollback(s)" in lines[0], err
    recs = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["event"] for r in recs] == ["rollback", "rollback", "diverged"]
    log = (run / "log.txt").read_text()
    assert log.count("rollback") >= 2 and "training diverged" in log


def test_the_weight_check_runs_on_checkpoint_steps_only(tmp_path):
    """A checkpoint is never written from non-finite weights: the weight norms join the check on saving steps."""
    t = Trainer(tiny_config())
    t.run = RunDir(tmp_path / "run")
    with torch.no_grad():
        next(t.G.parameters()).fill_(float("inf"))
    assert t.watchdog.bad_step(t, weights=False) is None
    assert t.watchdog.bad_step(t, weights=True) == "weight norm of G = inf"


def test_watchdog_config_is_checked(run_cli, tmp_path):
    for key, value, match in (("watchdog.max_rollbacks", "-1", "watchdog.max_rollbacks must be >= 0"),
                              ("watchdog.lr_factor", "0", "watchdog.lr_factor must be in (0, 1]"),
                              ("watchdog.lr_factor", "1.5", "watchdog.lr_factor must be in (0, 1]")):
        code, _, err = run_cli("train", "--out", tmp_path / "r", "--steps", "1", "--set", f"{key}={value}")
        assert code == 2 and match in err, err
