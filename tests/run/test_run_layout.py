"""The run directory's record files (append_jsonl, write_jsonl) and a run directory removed while training."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from ganforge.errors import GanforgeError
from ganforge.run import RunDir, append_jsonl, read_jsonl, write_jsonl


def test_append_jsonl_writes_one_valid_line_per_record(tmp_path):
    path = tmp_path / "stats.jsonl"
    append_jsonl(path, {"step": 1, "loss": float("nan"), "grad": [1.0, float("-inf")], "m": {"x": float("inf")}})
    append_jsonl(path, {"step": 2, "loss": 0.5})
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [  # strict JSON: no NaN/Infinity tokens
        {"step": 1, "loss": "nan", "grad": [1.0, "-inf"], "m": {"x": "inf"}},
        {"step": 2, "loss": 0.5},
    ]
    assert "NaN" not in path.read_text() and read_jsonl(path)[1] == {"step": 2, "loss": 0.5}


def test_write_jsonl_rewrites_atomically(tmp_path):
    path = tmp_path / "alarms.jsonl"
    for step in (1, 2, 3):
        append_jsonl(path, {"step": step})
    write_jsonl(path, [r for r in read_jsonl(path) if r["step"] <= 2] + [{"step": 9, "v": float("nan")}])
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}, {"step": 9, "v": "nan"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alarms.jsonl"]


def test_truncate_stats_keeps_records_up_to_the_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create()
    for step in (10, 20, 30):
        run.append_stats({"step": step, "loss": float("nan") if step == 10 else 1.0})
    run.truncate_stats(20)
    assert read_jsonl(run.stats) == [{"step": 10, "loss": "nan"}, {"step": 20, "loss": 1.0}]


def test_a_failed_append_is_one_line_and_cuts_its_partial_line(tmp_path, monkeypatch):
    path = tmp_path / "stats.jsonl"
    append_jsonl(path, {"step": 1})
    before = path.read_bytes()
    real = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 20:
            return real(fd, data[:20])  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(GanforgeError) as e:
        append_jsonl(path, {"step": 2, "blob": "x" * 100})
    monkeypatch.setattr(os, "write", real)
    assert str(e.value) == f"could not write {path} (No space left on device); the previous file is kept"
    assert path.read_bytes() == before
    append_jsonl(path, {"step": 3})
    assert read_jsonl(path) == [{"step": 1}, {"step": 3}]


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(GanforgeError, match=r"^could not write .*nowhere/stats.jsonl \(No such file or directory\)"):
        append_jsonl(tmp_path / "nowhere" / "stats.jsonl", {"step": 1})
    with pytest.raises(GanforgeError, match=r"^could not write .*nowhere/stats.jsonl \(No such file or directory\)"):
        write_jsonl(tmp_path / "nowhere" / "stats.jsonl", [])


def test_rm_rf_of_the_run_directory_while_training_stops_with_one_line(tmp_path):
    """The real CLI, `rm -rf RUN` after its first stats line: exit 2, one line, RUN not made again."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ganforge.cli", "train", "--out", str(run), "--dataset", "digits", "--steps", "400",
           "--batch-size", "16", "--device", "cpu", "--no-report", "--quiet", "--set", "log.log_every=10",
           "--set", "log.sample_every=20", "--set", "log.checkpoint_every=30",
           "--set", "model.g_width=16", "--set", "model.d_width=16"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run / "stats.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        while run.exists():  # the trainer may write while the tree goes: remove until it is gone
            shutil.rmtree(run, ignore_errors=True)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [
        f"ganforge train: error: run directory {run} was removed while training; nothing more can be saved"
    ], err
    assert not run.exists()


def test_folders_inside_a_locked_run_are_made_again_but_not_the_run(tmp_path):
    import torch

    from ganforge.report import save_grid

    run = RunDir(tmp_path / "run")
    run.create()
    run.lock()
    try:
        shutil.rmtree(run.samples)
        assert save_grid(torch.zeros(4, 1, 8, 8), run.sample_path(1)).is_file()
        assert save_grid(torch.zeros(4, 1, 8, 8), run.eval_dir / "deeper" / "a.png").is_file()
    finally:
        run.unlock()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(GanforgeError, match=r"^could not create the folder .*file for a.png \("):
        save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "file" / "a.png")


def test_taking_the_lock_removes_temporary_files_of_dead_writers_in_every_folder_writes_go_to(tmp_path):
    """A kill during a sample grid, plot or eval picture write leaves .NAME.tmp-PID there, not only in
    checkpoints/: the next lock holder removes them all (a live writer's file is kept)."""
    run = RunDir(tmp_path / "run")
    run.create()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = dead.stdout.strip()  # that process has exited: its temporary files are stale
    stale = [run.samples / f".step_0000000.png.tmp-{dead_pid}", run.path / "checkpoints" / f".last.pt.tmp-{dead_pid}",
             run.eval_dir / f".nearest_step_0000004.png.tmp-{dead_pid}", run.plots / f".losses.png.tmp-{dead_pid}",
             run.path / f".stats.jsonl.tmp-{dead_pid}"]
    live = run.samples / f".step_0000010.png.tmp-{os.getppid()}"  # a process that is alive
    for p in [*stale, live]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    run.lock()
    try:
        assert [p for p in stale if p.exists()] == [] and live.exists()
    finally:
        run.unlock()
