"""Write failures (disk full, read-only) keep the previous checkpoint; run directories are guarded."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.run import RunDir
from ganforge.run import atomic_write, load_checkpoint, load_weights

TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=100", "--set", "log.checkpoint_every=2", "--quiet"]


def _path_of(args: tuple) -> str:
    """The file a writer call is about: a path argument, or the file behind a descriptor."""
    for a in args:
        if isinstance(a, (str, Path)):
            return str(a)
        if isinstance(a, int):
            return os.readlink(f"/proc/self/fd/{a}")
    return ""


def _fail_second_checkpoint(real, err: int):
    """`real`, except that its second call concerning checkpoints/last.pt raises OSError(err)."""
    seen = {"n": 0}

    def inner(*a, **k):
        if "last.pt" in _path_of(a):
            seen["n"] += 1
            if seen["n"] == 2:
                raise OSError(err, os.strerror(err))
        return real(*a, **k)

    return inner


@pytest.mark.parametrize(
    "target, err, message",
    [
        ("torch.save", errno.ENOSPC, "No space left on device"),  # writing the checkpoint's data
        ("os.fsync", errno.EIO, "Input/output error"),  # flushing it to disk
        ("os.replace", errno.EROFS, "Read-only file system"),  # renaming it into place
    ],
)
def test_a_failed_checkpoint_write_keeps_the_previous_one_and_stops_clearly(tmp_path, run_cli, monkeypatch, target, err, message):
    """Steps 2 and 4 write checkpoints; the second write fails: exit 2 naming the file and the cause,
    last.pt still holds step 2 and loads, no temporary file is left, and --resume carries on."""
    run = tmp_path / "run"
    module, name = target.split(".")
    obj = torch if module == "torch" else os
    real = getattr(obj, name)
    monkeypatch.setattr(obj, name, _fail_second_checkpoint(real, err))
    code, _, stderr = run_cli("train", "--out", run, "--steps", "4", *TINY)
    assert code == 2, stderr
    assert "last.pt" in stderr and "could not write" in stderr and message in stderr, stderr
    assert "the previous file is kept" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    monkeypatch.setattr(obj, name, real)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 2
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    code, _, stderr = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert code == 0, stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4
    assert load_weights(run / "generator.safetensors")[1]["step"] == "4"


def test_atomic_write_keeps_the_old_file_on_a_partial_write(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def half_then_full_disk(tmp: Path) -> None:
        tmp.write_bytes(b"new but cut")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(GanforgeError, match=r"could not write .*f.bin \(No space left on device\); the previous file is kept"):
        atomic_write(path, half_then_full_disk)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 107200 vs 107096\nException raised from ..."


def test_a_checkpoint_writer_raising_runtimeerror_keeps_the_previous_one(tmp_path, run_cli, monkeypatch):
    """torch.save reports a failed write as RuntimeError (its zip writer), not OSError: the same clean stop,
    with the first line of torch's message (its C++ prefix trimmed) as the cause."""
    run = tmp_path / "run"
    real, seen = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        if "last.pt" in _path_of((f,)):
            seen["n"] += 1
            if seen["n"] == 2:
                Path(f).write_bytes(b"PK half a zip")
                raise RuntimeError(TORCH_FULL_DISK)
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    code, _, stderr = run_cli("train", "--out", run, "--steps", "4", *TINY)
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and "could not write" in stderr and "last.pt" in stderr, stderr
    assert "(unexpected pos 107200 vs 107096); the previous file is kept" in stderr and "enforce fail" not in stderr
    monkeypatch.setattr(torch, "save", real)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    code, _, stderr = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert code == 0, stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4


@pytest.mark.parametrize(
    "error, cause",
    [
        (RuntimeError(TORCH_FULL_DISK), "unexpected pos 107200 vs 107096"),
        (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), "No space left on device"),
        (ValueError(""), "ValueError"),
    ],
)
def test_atomic_write_turns_any_writer_error_into_one_line(tmp_path, error, cause):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"new but cut")
        raise error

    with pytest.raises(GanforgeError) as e:
        atomic_write(path, fail)
    assert str(e.value) == f"could not write {path} ({cause}); the previous file is kept"
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_atomic_write_removes_its_temporary_file_when_interrupted(tmp_path, interrupt):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"new but cut")
        raise interrupt()

    with pytest.raises(interrupt):
        atomic_write(path, interrupted)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_read_only_run_directory_is_a_clear_error(tmp_path, run_cli):
    """A real read-only directory (skipped as root, who can write anyway)."""
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    run = tmp_path / "run"
    assert run_cli("train", "--out", run, "--steps", "2", *TINY)[0] == 0
    before = (run / "checkpoints" / "last.pt").read_bytes()
    (run / "checkpoints").chmod(0o555)
    try:
        code, _, err = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
        assert code == 2 and "could not write" in err, err
        assert (run / "checkpoints" / "last.pt").read_bytes() == before
    finally:
        (run / "checkpoints").chmod(0o755)


def test_stale_temporary_files_are_removed_when_the_lock_is_taken(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create()
    stale = [run.path / ".generator.safetensors.tmp-123", run.path / "checkpoints" / ".last.pt.tmp-456",
             run.path / ".stats.jsonl.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale.append(run.path / f".report.html.tmp-{int(dead.stdout)}")  # a pid that has exited
    stale[-1].write_bytes(b"half")
    keep = [run.path / "notes.tmp.txt",  # not ours: no leading dot
            run.path / f".report.html.tmp-{os.getppid()}"]  # a live process writing now
    for p in keep:
        p.write_text("mine")
    run.lock()
    try:
        assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
    finally:
        run.unlock()


def test_two_processes_on_one_run_directory(tmp_path, run_cli):
    """A second trainer on a run that a live process is training is refused, naming the reason; it works again
    once that process is gone. And training into an existing directory without --resume is refused."""
    run = tmp_path / "run"
    assert run_cli("train", "--out", run, "--steps", "2", *TINY)[0] == 0
    code, _, err = run_cli("train", "--out", run, "--steps", "2", *TINY)
    assert code == 2 and "already exists; use --resume" in err
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ganforge.run import RunDir; r = RunDir(sys.argv[1]); r.lock();"
         " print('locked', flush=True); time.sleep(120)", str(run)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run_cli("train", "--resume", run, "--steps", "3", "--quiet")
        assert code == 2 and "is in use by another ganforge process" in err, err
        assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2  # untouched
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli("train", "--resume", run, "--steps", "3", "--quiet")  # the kernel dropped the lock
    assert code == 0, err
