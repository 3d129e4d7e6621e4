"""The live view of a run: curves from stats.jsonl, the latest sample grid, alarms, read on each poll.

A run being trained grows its files between polls; each file is parsed again only when its size or
modification time changed (a small cache per run), so polling an idle run costs a few stat calls.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

from ..alarms.monitor import read_alarms
from ..config import from_dict, load_yaml
from ..run import RunDir, read_jsonl, weights_step
from .paths import RunsRoot, mtime

CHARTS: dict[str, tuple[str, ...]] = {  # chart title -> the stats keys drawn in it
    "losses": ("loss/D", "loss/G"),
    "D outputs": ("D(x)", "D(G(z))"),
    "gradient norms": ("grad/D/total", "grad/G/total"),
}
MAX_POINTS = 1000  # points per curve sent to the page (longer runs are thinned evenly, the last kept)
MAX_ALARMS = 50  # the most recent alarms shown
CACHE_RUNS = 16  # runs whose parsed files are kept


class FileCache:
    """Parsed files keyed by path, reparsed when (size, mtime) changes; least recently used dropped."""

    def __init__(self, size: int = CACHE_RUNS) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Path, str], tuple[tuple[int, int], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, kind: str, parse: Callable[[Path], Any]) -> Any:
        """parse(path), or its cached result if the file has not changed since."""
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        key = (path, kind)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(key)
                return hit[1]
        value = parse(path)
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size * 3:
                self._items.popitem(last=False)
        return value


def number(v: Any) -> Optional[float]:
    """A stats value as a finite float, or None (NaN/inf are written as strings in stats.jsonl)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def curves(path: Path) -> dict[str, Any]:
    """{"charts": {title: {key: [[step, value], ...]}}, "step": last step, "events": watchdog events}."""
    records = read_jsonl(path)
    charts: dict[str, dict[str, list]] = {}
    for title, keys in CHARTS.items():
        lines = {k: [[r["step"], number(r[k])] for r in records if k in r and "step" in r] for k in keys}
        lines = {k: thin(v) for k, v in lines.items() if v}
        if lines:
            charts[title] = lines
    events = [r for r in records if "event" in r][-MAX_ALARMS:]
    steps = [r["step"] for r in records if isinstance(r.get("step"), int)]
    return {"charts": charts, "step": max(steps, default=0), "records": len(records), "events": events}


def thin(points: list, limit: int = MAX_POINTS) -> list:
    """At most `limit` points, evenly spaced, always with the last one."""
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    out = points[::stride]
    return out if out[-1] is points[-1] else out + [points[-1]]


def run_info(path: Path) -> dict[str, Any]:
    """What the page says about a run, from its config.yaml."""
    cfg = from_dict(load_yaml(path), str(path))
    m = cfg.model
    classes = m.num_classes if m.conditioning != "none" else None
    return {
        "dataset": cfg.data.dataset, "arch": m.arch, "objective": cfg.objective.name, "steps": cfg.train.steps,
        "z_dim": m.z_dim, "image_size": cfg.data.image_size, "channels": cfg.data.channels, "classes": classes,
        "info_cat": m.info_cat, "info_cont": m.info_cont, "conditioning": m.conditioning,
    }


class LiveView:
    """Answers /api/live and /api/run for the runs under one root."""

    def __init__(self, root: RunsRoot) -> None:
        self.root = root
        self.cache = FileCache()

    def info(self, name: str) -> dict[str, Any]:
        """A run's settings and whether it has weights yet."""
        run = self.root.run(name)
        out = {"name": name, **self.cache.get(run.config, "info", run_info)}
        out["has_weights"] = run.generator.is_file()
        out["weights_step"] = self._weights_step(run)
        return out

    def live(self, name: str) -> dict[str, Any]:
        """Curves, latest sample grid and alarms of a run (possibly one still training)."""
        run = self.root.run(name)
        stats = self.cache.get(run.stats, "curves", curves)
        alarms = self.cache.get(run.alarms, "alarms", lambda p: read_alarms(p.parent))
        return {
            "name": name, "step": stats["step"], "records": stats["records"], "charts": stats["charts"],
            "events": stats["events"], "alarms": alarms[-MAX_ALARMS:], "alarm_count": len(alarms),
            "sample": self._latest_sample(name, run), "has_weights": run.generator.is_file(),
            "weights_step": self._weights_step(run),
        }

    def _latest_sample(self, name: str, run: RunDir) -> Optional[dict[str, Any]]:
        """{"url", "step"} of the newest samples/step_NNNNNNN.png, or None."""
        try:
            files = sorted(run.samples.glob("step_*.png"))
        except OSError:
            return None
        for f in reversed(files):
            t = mtime(f)
            if t is not None:
                rel = f.relative_to(self.root.path).as_posix()
                step = int(f.stem[5:]) if f.stem[5:].isdigit() else None
                return {"url": f"/files/{quote(rel)}?v={t}", "step": step}
        return None

    def _weights_step(self, run: RunDir) -> Optional[int]:
        """The step generator.safetensors was written at, or None (no weights yet)."""
        if not run.generator.is_file():
            return None
        return self.cache.get(run.generator, "step", weights_step)
