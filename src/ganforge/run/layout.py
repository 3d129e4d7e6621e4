"""The run directory: one folder holding everything needed to understand and resume a run.
Every file name of a run is spelled here, once.

    RUN/config.yaml                    the resolved config
    RUN/log.txt                        the log
    RUN/stats.jsonl                    one JSON object per log interval (and watchdog events)
    RUN/alarms.jsonl                   alarms raised during training (ganforge.alarms)
    RUN/metrics.jsonl                  one JSON object per evaluation (ganforge eval, --eval-every)
    RUN/samples/step_NNNNNNN.png       sample grids from a fixed noise batch
    RUN/checkpoints/last.pt            G, D, optimisers, objective state, data position, RNG states
    RUN/checkpoints/best.pt, best.json the best checkpoint by log.eval_metric (--eval-every)
    RUN/generator.safetensors          G's weights (its EMA when kept) for sharing and `ganforge sample`
    RUN/generator-best.safetensors     the best checkpoint's generator
    RUN/eval/                          evaluation pictures (nearest training images)
    RUN/report.html, RUN/plots/        the report and its PNG plots
    RUN/tensorboard/                   TensorBoard event files (--tensorboard)
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from ..errors import GanforgeError
from .checkpoint import atomic_write, check_run_dir, claim_run_dir, release_run_dir, write_cause, write_error

log = logging.getLogger("ganforge")

CONFIG = "config.yaml"
STATS = "stats.jsonl"
ALARMS = "alarms.jsonl"
METRICS = "metrics.jsonl"
LOG = "log.txt"
LOCK = ".lock"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LAST = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"
BEST_INFO = "checkpoints/best.json"
GENERATOR = "generator.safetensors"
BEST_GENERATOR = "generator-best.safetensors"
EVAL = "eval"
REPORT = "report.html"
PLOTS = "plots"
TENSORBOARD = "tensorboard"


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

    @property
    def alarms(self) -> Path:
        return self.path / ALARMS

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def best(self) -> Path:
        return self.path / BEST

    @property
    def best_info(self) -> Path:
        return self.path / BEST_INFO

    @property
    def best_generator(self) -> Path:
        return self.path / BEST_GENERATOR

    @property
    def eval_dir(self) -> Path:
        return self.path / EVAL

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def create(self) -> None:
        """Make a new run directory; an existing non-empty one is refused."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise GanforgeError(f"run directory {self.path} already exists; use --resume {self.path} or another --out")
        try:
            (self.path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            self.samples.mkdir(exist_ok=True)
        except OSError as e:
            cause = write_cause(e)
            raise GanforgeError(f"could not create the run directory {self.path} ({cause}); choose another --out") from None

    def check_resumable(self) -> None:
        if not self.path.is_dir():
            raise GanforgeError(f"--resume {self.path}: no such run directory")
        if not self.config.is_file():
            raise GanforgeError(f"--resume {self.path}: not a ganforge run (no {CONFIG})")

    def lock(self) -> None:
        """Hold an exclusive lock for this process; a second trainer on the same run is refused."""
        import fcntl

        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            cause = write_cause(e)
            raise GanforgeError(f"could not write {self.path / LOCK} ({cause}); the run directory must be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GanforgeError(f"run directory {self.path} is in use by another ganforge process") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())  # for people; the lock itself is the flock
        except OSError:
            pass  # a full disk: the lock holds all the same, and the next write of the run says why it failed
        self._lock_fd = fd
        claim_run_dir(self.path)  # its removal while training is then named as such by every write
        self.remove_stale_temp_files()

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temporary files of writers that died mid-write (call only while holding the lock).

        `.NAME.tmp-PID` of a process that is still alive (e.g. `ganforge report` writing now) is kept.
        `.tmpXXXXXX` files (a library's own temporary file, e.g. while writing .safetensors) have no
        owner to ask: the lock holder is the only writer of weights, so they are stale.
        """
        folders = (self.path, self.path / CHECKPOINTS, self.samples, self.eval_dir, self.plots)  # where atomic writes go
        dirs = [d for d in folders if d.is_dir()]
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
            release_run_dir(self.path)

    # logging and stats
    def setup_logging(self, quiet: bool) -> logging.Handler:
        """Log to RUN/log.txt always (a line that cannot be written is dropped, never a traceback)."""
        log.setLevel(logging.INFO)
        check_run_dir(self.path / LOG)
        try:
            fh = _RunLogHandler(self.path / LOG)
        except OSError as e:
            raise write_error(self.path / LOG, e) from None
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(fh)
        return fh

    def append_stats(self, record: dict[str, Any]) -> None:
        if self.readonly:
            return
        append_jsonl(self.stats, record)

    def truncate_stats(self, step: int) -> None:
        """Drop stats lines written after `step` (a crash after the last checkpoint) before resuming."""
        if self.readonly or not self.stats.is_file():
            return
        write_jsonl(self.stats, [r for r in read_stats(self.stats) if r.get("step", 0) <= step])


class _RunLogHandler(logging.FileHandler):
    """RUN/log.txt. A log line that cannot be written (a full disk) is dropped quietly, counted in
    `lost`: the next checkpoint or record write stops training with one clear line, which
    logging's own multi-line report on stderr would bury. (A removed run directory's log.txt
    stays writable: the open file outlives its name.)"""

    lost = 0

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            self.lost += 1
            return
        super().handleError(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:
            self.lost += 1

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the buffered tail could not be written
            self.lost += 1


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


def _finite_json(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so the file stays valid and the event visible."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(_finite_json(record), allow_nan=False) + "\n"


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line (NaN/inf as strings). A failed write is a one-line
    GanforgeError naming the file, and a partly written line is cut off again: the file is kept."""
    path = Path(path)
    data = _json_line(record).encode()
    check_run_dir(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        start, written = os.fstat(fd).st_size, 0
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError as e:
        _cut_back(fd, start, written)
        raise write_error(path, e) from None
    finally:
        os.close(fd)


def _cut_back(fd: int, start: int, written: int) -> None:
    """Remove the `written` bytes of a failed append (when no other writer appended meanwhile)."""
    try:
        if written and os.fstat(fd).st_size == start + written:
            os.ftruncate(fd, start)
    except OSError:
        pass


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Rewrite a .jsonl file with `records` (NaN/inf as strings), atomically (atomic_write)."""
    text = "".join(_json_line(r) for r in records)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records (JSON objects) of a .jsonl file: stats, metrics, alarms. A missing file has none;
    a torn last line (a crash mid-write) and lines that are not objects are skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


read_stats = read_jsonl  # RUN/stats.jsonl
