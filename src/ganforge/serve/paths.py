"""RUNS_DIR as the server sees it: run discovery, and every path a request names resolved inside it.

A request may name a run (`?run=NAME`) or a file (`/files/NAME/samples/step_0000100.png`); both are
paths relative to RUNS_DIR. `..`, absolute paths, NUL bytes, backslashes and symlinks that lead out of
RUNS_DIR are refused (403); nothing outside RUNS_DIR is ever opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import GanforgeError
from ..run import RunDir
from ..run.layout import CONFIG

MAX_DEPTH = 4  # run directories are found this many folders below RUNS_DIR at most
MAX_RUNS = 500  # the picker lists at most this many runs
SKIP = {".git", "__pycache__", "node_modules", ".venv"}


class HttpError(GanforgeError):
    """A request that cannot be answered: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RunsRoot:
    """The folder of runs a server exposes (resolved once, symlinks included)."""

    def __init__(self, root: str | Path) -> None:
        path = Path(root)
        if not path.is_dir():
            raise GanforgeError(f"{path}: no such directory of runs")
        self.path = path.resolve()

    def resolve(self, rel: str) -> Path:
        """The real path of `rel` (relative to the root, '/'-separated); 403 if it leads outside."""
        if "\x00" in rel or "\\" in rel:
            raise HttpError(403, "forbidden path: NUL bytes and backslashes are not allowed")
        if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
            raise HttpError(403, "forbidden path: absolute paths are not allowed")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise HttpError(403, "forbidden path: '..' is not allowed")
        real = self.path.joinpath(*parts).resolve()  # follows symlinks: the target is what is checked
        if real != self.path and not real.is_relative_to(self.path):
            raise HttpError(403, "forbidden path: it leads outside the runs directory")
        return real

    def name(self, run: Path) -> str:
        """The name of a run: its path relative to the root ('.' for the root itself)."""
        return run.relative_to(self.path).as_posix() or "."

    def run(self, name: str) -> RunDir:
        """The run directory called `name`; 404 if it is not (or no longer) a run."""
        if not name:
            raise HttpError(400, "missing parameter 'run'")
        path = self.resolve(name)
        if not path.is_dir():
            raise HttpError(404, f"run '{name}' does not exist (deleted?)")
        run = RunDir(path)
        if not run.config.is_file():
            raise HttpError(404, f"'{name}' is not a ganforge run (no {CONFIG})")
        return run

    def file(self, rel: str) -> Path:
        """A regular file inside the root; 404 if there is none."""
        path = self.resolve(rel)
        if not path.is_file():
            raise HttpError(404, f"no such file: {rel}")
        return path

    def find_runs(self) -> list[dict[str, Any]]:
        """Every run directory (a folder with config.yaml) under the root, newest first."""
        found: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(self.path):  # symlinked folders are not followed
            here = Path(dirpath)
            depth = len(here.relative_to(self.path).parts)
            if CONFIG in filenames:
                found.append(_describe(self.name(here), RunDir(here)))
                dirnames[:] = []  # a run's subfolders (samples, checkpoints) hold no runs
            elif depth >= MAX_DEPTH:
                dirnames[:] = []
            else:
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("."))
            if len(found) >= MAX_RUNS:
                break
        return sorted(found, key=lambda r: (-r["updated"], r["name"]))


def _describe(name: str, run: RunDir) -> dict[str, Any]:
    """The picker's line for one run."""
    times = [t for t in map(mtime, (run.config, run.stats, run.generator)) if t is not None]
    return {"name": name, "has_weights": run.generator.is_file(), "updated": max(times, default=0.0)}


def mtime(path: Path) -> float | None:
    """The file's modification time, or None if it is missing (or vanished a moment ago)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None
