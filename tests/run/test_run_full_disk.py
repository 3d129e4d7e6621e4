"""A real full disk (a small tmpfs, mounted by the test: root only): every write of a run fails with one
line naming the file, no temporary file is left, the previous file still loads, and a training run
stopped by a full disk resumes, once there is space again, to the weights of an uninterrupted run."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.report import save_grid
from ganforge.run import (
    RunDir,
    append_jsonl,
    load_checkpoint,
    load_weights,
    read_jsonl,
    save_checkpoint,
    save_weights,
    write_jsonl,
)

PAGE = 4096
NO_SPACE = "no space left on device"
TRAIN = ["--dataset", "digits", "--steps", "40", "--batch-size", "16", "--device", "cpu", "--no-report", "--quiet",
         "--set", "log.checkpoint_every=10", "--set", "model.g_width=16", "--set", "model.d_width=16"]


class Tmpfs:
    """A mounted tmpfs: its size can be changed and its free space filled with a ballast file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size_k: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_k}k", str(self.path)], check=True, capture_output=True)

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int) -> Path:
        """Take all free space but `leave` bytes (rounded down to a page) with RUN/../ballast."""
        ballast = self.path / "ballast"
        with open(ballast, "ab") as f:
            f.write(b"\1" * max(0, (self.free() - leave) // PAGE * PAGE))
        return ballast


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 1 MiB tmpfs on tmp_path/fs, unmounted afterwards; skipped unless root and mount works."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1024k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield Tmpfs(mnt)
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def one_line_about(e: pytest.ExceptionInfo, path: Path) -> str:
    text = str(e.value)
    assert "\n" not in text and f"could not write {path} (" in text and "the previous file is kept" in text, text
    return text


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_a_full_disk_keeps_the_previous_checkpoint_weights_and_grid(tmpfs):
    ck, gen, png = tmpfs.path / "last.pt", tmpfs.path / "generator.safetensors", tmpfs.path / "step.png"
    small = {"w": torch.randn(2000)}
    save_checkpoint({"step": 1, "G": small}, ck)
    save_weights(small, gen, {"step": "1"})
    save_grid(torch.zeros(4, 1, 8, 8), png)
    old_png = png.read_bytes()
    tmpfs.fill(leave=64 * 1024)
    big = {"w": torch.randn(200_000)}  # 800 kB: more than is left
    with pytest.raises(GanforgeError) as e:
        save_checkpoint({"step": 2, "G": big}, ck)  # torch.save: RuntimeError from its zip writer
    assert NO_SPACE in one_line_about(e, ck).lower()
    with pytest.raises(GanforgeError) as e:
        save_weights(big, gen, {"step": "2"})  # safetensors: SafetensorError
    assert NO_SPACE in one_line_about(e, gen).lower()
    with pytest.raises(GanforgeError) as e:
        save_grid(torch.rand(64, 3, 32, 32) * 2 - 1, png)  # PIL: ~500 kB of noise
    assert NO_SPACE in one_line_about(e, png).lower()
    assert temp_files(tmpfs.path) == []
    state = load_checkpoint(ck)
    assert state["step"] == 1 and torch.equal(state["G"]["w"], small["w"])
    tensors, meta = load_weights(gen)
    assert meta["step"] == "1" and torch.equal(tensors["w"], small["w"])
    assert png.read_bytes() == old_png


def test_jsonl_records_and_the_log_on_a_full_disk(tmpfs, capsys):
    """append_jsonl cuts a partly written line off again; write_jsonl keeps the old file; log lines that
    cannot be written are dropped without logging's multi-line report."""
    stats = tmpfs.path / "stats.jsonl"
    append_jsonl(stats, {"step": 1, "loss": float("nan"), "nested": {"x": float("inf")}})
    write_jsonl(tmpfs.path / "other.jsonl", [{"step": 1}])
    before = stats.read_bytes()
    assert read_jsonl(stats) == [{"step": 1, "loss": "nan", "nested": {"x": "inf"}}]
    run = RunDir(tmpfs.path)
    handler = run.setup_logging(quiet=True)
    try:
        tmpfs.fill(leave=0)
        with pytest.raises(GanforgeError) as e:
            append_jsonl(stats, {"step": 2, "blob": "x" * 3 * PAGE})
        assert NO_SPACE in one_line_about(e, stats).lower()
        assert stats.read_bytes() == before
        with pytest.raises(GanforgeError) as e:
            write_jsonl(stats, [{"step": 2, "blob": "x" * 3 * PAGE}])
        assert NO_SPACE in one_line_about(e, stats).lower()
        assert stats.read_bytes() == before and temp_files(tmpfs.path) == []
        logging.getLogger("ganforge").info("x" * 3 * PAGE)
    finally:
        logging.getLogger("ganforge").removeHandler(handler)
        handler.close()
    assert handler.lost >= 1 and capsys.readouterr().err == ""


def train(*args: object, timeout: int = 300) -> subprocess.CompletedProcess:
    """`ganforge train ...` in a subprocess, one thread (the results are compared bit for bit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ganforge.cli", "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def pages(path: Path) -> int:
    return -(-path.stat().st_size // PAGE) * PAGE


def test_training_stopped_by_a_full_disk_resumes_to_the_uninterrupted_weights(tmp_path, tmpfs):
    """Checkpoints at steps 10, 20, 30, 40. The tmpfs holds the run at step 10 but not a second last.pt
    beside the first: the step-20 checkpoint fails. Exit 2, one line, no temporary file, last.pt at step
    10; with space again --resume finishes, bit-identical to a run that never stopped."""
    ref = tmp_path / "ref"
    done = train("--out", ref, *TRAIN)
    assert done.returncode == 0, done.stderr
    ckpt, weights = pages(ref / "checkpoints" / "last.pt"), pages(ref / "generator.safetensors")
    tmpfs.resize((ckpt + weights + 16 * PAGE + ckpt // 2) // 1024)  # 16 pages: config, log, lock, first grid
    run = tmpfs.path / "run"
    done = train("--out", run, *TRAIN)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge train: error: could not write "), done.stderr
    assert str(run / "checkpoints" / "last.pt") in lines[0] and NO_SPACE in lines[0].lower(), lines[0]
    assert temp_files(run) == []
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 10
    tmpfs.resize(64 * 1024)
    done = train("--resume", run, "--steps", "40", "--device", "cpu", "--no-report", "--quiet")
    assert done.returncode == 0, done.stderr
    got, want = load_checkpoint(run / "checkpoints" / "last.pt"), load_checkpoint(ref / "checkpoints" / "last.pt")
    assert got["step"] == want["step"] == 40
    for net in ("G", "D"):
        assert got[net].keys() == want[net].keys()
        assert all(torch.equal(got[net][k], want[net][k]) for k in want[net]), net


def test_a_removed_run_directory_is_named_and_not_recreated(tmp_path):
    """Every writer of a run, after `rm -rf RUN` while it is locked: one line naming the run directory."""
    run = RunDir(tmp_path / "run")
    run.create()
    run.lock()
    message = f"run directory {run.path} was removed while training; nothing more can be saved"
    writes = {
        "stats": lambda: run.append_stats({"step": 2}),
        "truncate": lambda: write_jsonl(run.stats, []),
        "checkpoint": lambda: save_checkpoint({"step": 2}, run.last),
        "weights": lambda: save_weights({"w": torch.zeros(2)}, run.generator, {"step": "2"}),
        "grid": lambda: save_grid(torch.zeros(4, 1, 8, 8), run.sample_path(2)),
    }
    try:
        run.append_stats({"step": 1})
        shutil.rmtree(run.path)
        for what, write in writes.items():
            with pytest.raises(GanforgeError) as e:
                write()
            assert str(e.value) == message, what
        assert not run.path.exists()  # no writer made parts of it again
        run.path.mkdir()  # another directory by the same name is not the run either
        with pytest.raises(GanforgeError, match="was removed while training"):
            save_checkpoint({"step": 2}, run.last)
    finally:
        run.unlock()
    save_grid(torch.zeros(4, 1, 8, 8), run.sample_path(2))  # unlocked: an ordinary folder again
    assert run.sample_path(2).is_file()


def test_a_read_only_file_system_is_one_line_for_every_write(tmpfs):
    """Root ignores permissions, not a read-only mount: the lock, checkpoints, records, grids, a new run."""
    run = RunDir(tmpfs.path / "run")
    run.create()
    save_checkpoint({"step": 1}, run.last)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs.path)], check=True, capture_output=True)
    try:
        with pytest.raises(GanforgeError, match=r"^could not write .*\.lock \(Read-only file system\)"):
            run.lock()
        for write in (lambda: save_checkpoint({"step": 2}, run.last), lambda: append_jsonl(run.stats, {"step": 2}),
                      lambda: save_grid(torch.zeros(4, 1, 8, 8), run.sample_path(2))):
            with pytest.raises(GanforgeError, match=r"^could not write .* \(Read-only file system\); the previous"):
                write()
        with pytest.raises(GanforgeError, match=r"^could not create the run directory .* \(Read-only file system\)"):
            RunDir(tmpfs.path / "other").create()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs.path)], check=True, capture_output=True)
    assert load_checkpoint(run.last)["step"] == 1
