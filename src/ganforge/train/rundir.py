"""The run directory: one folder holding everything needed to understand and resume a run.

    RUN/config.yaml              the resolved config
    RUN/log.txt                  the log
    RUN/stats.jsonl              one JSON object per log interval
    RUN/samples/step_NNNNNNN.png sample grids from a fixed noise batch
    RUN/checkpoints/last.pt      G, D, optimisers, objective state, data position, RNG states
    RUN/generator.safetensors    G's weights for sharing and `ganforge sample`
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

from ..errors import GanforgeError

log = logging.getLogger("ganforge")

CONFIG = "config.yaml"
STATS = "stats.jsonl"
LOG = "log.txt"
SAMPLES = "samples"
LAST = "checkpoints/last.pt"
GENERATOR = "generator.safetensors"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: Optional[int] = None
        self.readonly = False  # set on ranks other than 0 in multi-process training: they write nothing

    # paths
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def stats(self) -> Path:
        return self.path / STATS

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def generator(self) -> Path:
        return self.path / GENERATOR

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def create(self) -> None:
        """Make a new run directory; an existing non-empty one is refused."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise GanforgeError(f"run directory {self.path} already exists; use --resume {self.path} or another --out")
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.samples.mkdir(exist_ok=True)

    def check_resumable(self) -> None:
        if not self.path.is_dir():
            raise GanforgeError(f"--resume {self.path}: no such run directory")
        if not self.config.is_file():
            raise GanforgeError(f"--resume {self.path}: not a ganforge run (no {CONFIG})")

    def lock(self) -> None:
        """Hold an exclusive lock for this process; a second trainer on the same run is refused."""
        import fcntl

        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GanforgeError(f"run directory {self.path} is in use by another ganforge process") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        self.remove_stale_temp_files()

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files of writers that died mid-write (call only while holding the lock).

        `.NAME.tmp-PID` of a process that is still alive (e.g. `ganforge report` writing now) is kept.
        `.tmpXXXXXX` files (a library's own temporary file, e.g. while writing .safetensors) have no
        owner to ask: the lock holder is the only writer of weights, so they are stale.
        """
        dirs = [d for d in (self.path, self.path / "checkpoints") if d.is_dir()]
        found = {p for d in dirs for pattern in (".*.tmp*", ".tmp*") for p in d.glob(pattern) if p.is_file()}
        stale = [p for p in sorted(found) if ".tmp-" not in p.name or not _alive(p.name.rpartition(".tmp-")[2])]
        for p in stale:
            try:
                p.unlink()
                log.info("removed %s, left by an interrupted write", p)
            except OSError:
                pass
        return stale

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # logging and stats
    def setup_logging(self, quiet: bool) -> logging.Handler:
        """Log to RUN/log.txt always, and to stderr at INFO unless quiet."""
        log.setLevel(logging.INFO)
        fh = logging.FileHandler(self.path / LOG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(fh)
        return fh

    def append_stats(self, record: dict[str, Any]) -> None:
        if self.readonly:
            return
        with open(self.stats, "a") as f:
            f.write(json.dumps(_finite_json(record)) + "\n")

    def truncate_stats(self, step: int) -> None:
        """Drop stats lines written after `step` (a crash after the last checkpoint) before resuming."""
        if self.readonly or not self.stats.is_file():
            return
        keep = [line for line in read_stats(self.stats) if line.get("step", 0) <= step]
        tmp = self.stats.with_name(".stats.jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        os.replace(tmp, self.stats)


def _alive(pid: str) -> bool:
    """Whether `pid` names a running process other than this one ('' or garbage: no)."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _finite_json(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN/inf: write them as strings so the file stays valid and the event visible."""
    out = {}
    for k, v in record.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        out[k] = v
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a .jsonl file (stats, metrics, alarms); a torn last line (a crash mid-write) is ignored."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


read_stats = read_jsonl  # RUN/stats.jsonl


def is_tty() -> bool:
    return sys.stderr.isatty()
