"""SIGKILL at random moments, including in the middle of checkpoint writes: nothing is lost.

After every kill: the latest checkpoint loads, never goes backwards, and `--resume` continues from it.
After the final clean finish: no temporary files, stats.jsonl holds every step exactly once, and the
weights are bit-identical to one uninterrupted run of the same length (CPU, one thread).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from ganforge.run import read_stats
from ganforge.run import load_checkpoint, load_weights

# The schedules over a fixed length: the killed run trains towards --steps 100000 and finishes at --steps N, the
# reference at N all along, so schedules over the total (the demo recipe's cosine lr and its R1/R2 gamma, Adam
# beta2 and EMA ramps) would differ between them by design. train.ramp_steps times them all alike in both.
TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=100000", "--set", "log.log_every=1",
        "--set", "train.ramp_steps=500"]
FAULTS = ("partial-save", "partial-weights", "before-rename", "after-rename")


def _ctx() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # torch._dynamo: the first optimiser built imports it lazily (~5 s); load it once in the server.
    ctx.set_forkserver_preload(["reliability_child", "ganforge.cli", "ganforge.train", "ganforge.data", "sklearn.datasets",
                               "torch._dynamo"])
    return ctx


def temp_files(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if ".tmp" in p.name]


def check_after_kill(run: Path, last_step: int) -> int:
    """The invariants after a kill; returns the checkpoint step (0 if there is none yet)."""
    ckpt = run / "checkpoints" / "last.pt"
    if not ckpt.exists():
        assert last_step == 0, "a checkpoint disappeared"
        return 0
    state = load_checkpoint(ckpt)  # raises if it does not load
    step = int(state["step"])
    assert step >= last_step, f"checkpoint went back from step {last_step} to {step}"
    assert all(torch.isfinite(v).all() for v in state["G"].values())
    if (run / "generator.safetensors").exists():
        _, meta = load_weights(run / "generator.safetensors")
        assert int(meta["step"]) <= step  # written right after last.pt (a resume re-writes it when it lags)
    if (run / "stats.jsonl").exists():  # readable; a line torn by the kill is skipped
        assert all(isinstance(r["step"], int) for r in read_stats(run / "stats.jsonl"))
    return step


def kill_loop(
    tmp_path: Path, kills: int, seed: int, start: Callable[..., bool], window: tuple[float, float], faults: bool
) -> tuple[Path, int, list[tuple[str, int, bool]]]:
    """Start/resume `kills` times, SIGKILL each child (timer, or self-kill mid-write when `faults`).

    Returns the run directory, its checkpoint step and (kill mode, checkpoint step, resumed?) per kill.
    """
    rng = random.Random(seed)
    run = tmp_path / "run"
    step, history = 0, []
    for i in range(kills):
        fresh = not (run / "config.yaml").exists()
        if fresh:
            shutil.rmtree(run, ignore_errors=True)  # killed before its config existed: nothing to lose
            argv = ["train", "--out", str(run), "--steps", "100000", "--set", "log.checkpoint_every=1", *TINY]
        else:
            argv = ["train", "--resume", str(run)]
        if i % 6 == 0:
            order = rng.sample(["timer", "timer", *FAULTS], 6) if faults else ["timer"] * 6
        mode = order[i % 6]
        fault = (mode, rng.randint(1, 6)) if mode != "timer" else None
        output = tmp_path / f"child_{i}.txt"
        start(argv, output, fault, rng.uniform(*window))
        text = output.read_text() if output.exists() else ""
        assert "Traceback" not in text and "error:" not in text, text
        resumed = re.search(r"resuming .* at step (\d+) of", text)
        if resumed:  # (a child killed early may not have got that far)
            assert not fresh and int(resumed.group(1)) == step, text  # continues from the checkpoint just checked
        if mode in ("partial-save", "partial-weights", "before-rename"):
            assert temp_files(run), f"kill {i} ({mode}) should have left a temporary file mid-write"
        step = check_after_kill(run, step)
        history.append((mode, step, bool(resumed)))
    return run, step, history


def finish(run: Path, step: int, run_cli) -> int:
    total = step + 3
    code, _, err = run_cli("train", "--resume", run, "--steps", total, "--quiet")
    assert code == 0, err
    assert not temp_files(run), temp_files(run)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == total
    assert load_weights(run / "generator.safetensors")[1]["step"] == str(total)
    assert [r["step"] for r in read_stats(run / "stats.jsonl")] == list(range(1, total + 1))
    return total


def assert_same_as_uninterrupted(run: Path, total: int, tmp_path: Path, run_cli) -> None:
    ref = tmp_path / "reference"
    code, _, err = run_cli("train", "--out", ref, "--steps", total, "--quiet", *TINY, "--set", "log.checkpoint_every=100000")
    assert code == 0, err
    a = load_checkpoint(run / "checkpoints" / "last.pt")
    b = load_checkpoint(ref / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for k in b[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_sigkill_24_times_including_mid_write_loses_nothing(tmp_path, run_cli):
    ctx = _ctx()

    def start(argv, output, fault, delay) -> bool:
        import reliability_child

        p = ctx.Process(target=reliability_child.train_child, args=(argv, str(output), fault))
        p.start()
        timer = False
        p.join(60 if fault else delay)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
            timer = True
        p.join(60)
        assert not p.is_alive()
        assert p.exitcode == -signal.SIGKILL, (p.exitcode, output.read_text() if output.exists() else "")
        return timer

    run, step, history = kill_loop(tmp_path, 24, seed=8, start=start, window=(0.05, 1.2), faults=True)
    modes = {m for m, _, _ in history}
    assert modes >= {"timer", *FAULTS}, modes  # every kind of kill happened
    assert sum(r for _, _, r in history) >= 12  # most children resumed (and said from which step)
    assert step > 0
    total = finish(run, step, run_cli)
    assert_same_as_uninterrupted(run, total, tmp_path, run_cli)


@pytest.mark.slow
def test_sigkill_fresh_interpreters_20_times(tmp_path, run_cli):
    """The same with real `python -m ganforge train` processes (~5-15 s to start here), killed by a timer:
    every 5th while starting up, the others a random 0.1-3 s after training began."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    count = {"n": 0}

    def start(argv, output, fault, delay) -> bool:
        count["n"] += 1
        with open(output, "w") as f:
            p = subprocess.Popen([sys.executable, "-m", "ganforge", *argv], stdout=f, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        if count["n"] % 5:  # wait until it trains, then a random moment
            while p.poll() is None and "training " not in output.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            delay = delay * 2  # a random moment of the start-up
        try:
            p.wait(delay)
            return False
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(60)
            return True

    run, step, history = kill_loop(tmp_path, 20, seed=1, start=start, window=(0.1, 3.0), faults=False)
    assert sum(1 for _, s, _ in history if s > 0) >= 10
    total = finish(run, step, run_cli)
    assert_same_as_uninterrupted(run, total, tmp_path, run_cli)
