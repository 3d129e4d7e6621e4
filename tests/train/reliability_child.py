"""Runs `ganforge train` in a forked child for the SIGKILL tests, optionally killing itself mid-write.

Children are forked from a forkserver that has imported torch and ganforge once, so each one starts
in a fraction of a second instead of the ~3-10 s of a fresh interpreter on a loaded 2-core machine.
A fault (hook, n) makes the child SIGKILL itself at the n-th call of a write hook:

    partial-save     torch.save wrote the temporary checkpoint, which is then cut in half
    partial-weights  safetensors wrote the temporary generator file, which is then cut in half
    before-rename    the temporary file is complete and fsync'd, os.replace has not happened
    after-rename     os.replace happened, the directory fsync has not
"""

from __future__ import annotations

import os
import signal
from typing import Optional


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install_fault(fault: tuple[str, int]) -> None:
    import safetensors.torch
    import torch

    kind, n = fault
    calls = {"n": 0}

    def due() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    if kind == "partial-save":
        real_save = torch.save

        def save(obj, f, *a, **k):
            real_save(obj, f, *a, **k)
            if due():
                os.truncate(f, os.path.getsize(f) // 2)
                _die()

        torch.save = save
    elif kind == "partial-weights":
        real_file = safetensors.torch.save_file

        def save_file(tensors, filename, *a, **k):
            real_file(tensors, filename, *a, **k)
            if due():
                os.truncate(filename, os.path.getsize(filename) // 2)
                _die()

        safetensors.torch.save_file = save_file
    elif kind in ("before-rename", "after-rename"):
        real_replace = os.replace

        def replace(src, dst, *a, **k):
            hit = due()
            if hit and kind == "before-rename":
                _die()
            real_replace(src, dst, *a, **k)
            if hit:
                _die()

        os.replace = replace
    else:
        raise ValueError(kind)


def train_child(argv: list[str], output: str, fault: Optional[tuple[str, int]]) -> None:
    """Target of a multiprocessing Process: `ganforge <argv>` with stdout/stderr appended to `output`."""
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import torch

    torch.set_num_threads(1)
    if fault is not None:
        _install_fault(fault)
    from ganforge.cli import main

    code = main(argv)
    os._exit(code)
