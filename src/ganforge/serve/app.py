"""The routes of the JSON API (server.py serves them, and the page, over HTTP).

    GET /                       the page (page.py: HTML, /app.js, /app.css; no external resources)
    GET /api/runs               every run under RUNS_DIR
    GET /api/run?run=NAME       a run's settings, and what the explorer offers for it
    GET /api/live?run=NAME      curves, latest sample grid, alarms (polled while a run trains)
    GET /api/sample?run=NAME&seed=S&n=N&truncation=PSI&class=K&cat=K&codes=C1,C2&nearest=1
    GET /api/interpolate?run=NAME&seed_a=A&seed_b=B&steps=K&mode=slerp|lerp (and truncation .. nearest)
    GET /files/NAME/PATH        a file inside RUNS_DIR (sample grids, report.html)

seed: samples use seeds S..S+N-1 (ganforge.load's Generator.sample); truncation: psi in [0, 1];
class: a conditional run's class (default: seed % classes); cat, codes: an InfoGAN run's category
and its continuous codes in [-1, 1]; nearest=1: each image's nearest training image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .explorer import Explorer
from .live import LiveView
from .params import capped, choice_param, float_param, floats_param, int_param
from .paths import HttpError, RunsRoot

MAX_N = 64  # samples per explorer request
MAX_STEPS = 32  # frames per interpolation
MAX_SEED = 2**32 - 1


class App:
    """What the routes need: the root of runs, the live view and the explorer."""

    def __init__(self, runs_dir: str | Path, device: str = "cpu") -> None:
        self.root = RunsRoot(runs_dir)
        self.live = LiveView(self.root)
        self.explorer = Explorer(self.root, device)


def api_runs(app: App, q: dict[str, str]) -> dict[str, Any]:
    """The run picker: every run under the root, newest first."""
    return {"root": str(app.root.path), "runs": app.root.find_runs()}


def api_run(app: App, q: dict[str, str]) -> dict[str, Any]:
    """A run's settings and the explorer's controls (its nearest-image index starts building)."""
    name = q.get("run", "")
    out = app.live.info(name)
    out["explorer"] = None
    if out["has_weights"]:
        try:
            out["explorer"] = app.explorer.describe(name)
            app.explorer.prepare(name)
        except HttpError as e:
            out["explorer_error"] = str(e)
    return out


def api_live(app: App, q: dict[str, str]) -> dict[str, Any]:
    """Curves, latest sample grid and alarms of a run."""
    return app.live.live(q.get("run", ""))


def latent_params(q: dict[str, str]) -> dict[str, Any]:
    """Truncation, class, InfoGAN category and continuous codes, and whether to find nearest images."""
    return {
        "truncation": float_param(q, "truncation", None, 0.0, 1.0),
        "label": int_param(q, "class", None, 0, 2**31 - 1),
        "cat": int_param(q, "cat", None, 0, 2**31 - 1),
        "cont": floats_param(q, "codes", -1.0, 1.0),
        "nearest": choice_param(q, "nearest", "1", ("0", "1")) == "1",
    }


def api_sample(app: App, q: dict[str, str]) -> dict[str, Any]:
    """n samples (capped at MAX_N, said in notes) from seeds seed..seed+n-1."""
    notes: list[str] = []
    n = capped(q, "n", 1, MAX_N, notes)
    seed = int_param(q, "seed", 0, 0, MAX_SEED)
    assert seed is not None
    out = app.explorer.sample(q.get("run", ""), seed=seed, n=n, **latent_params(q))
    out["notes"] = notes + out["notes"]
    return out


def api_interpolate(app: App, q: dict[str, str]) -> dict[str, Any]:
    """A walk of `steps` frames (capped at MAX_STEPS) from seed_a's latent to seed_b's."""
    notes: list[str] = []
    steps = capped(q, "steps", 8, MAX_STEPS, notes)
    if steps < 2:
        raise HttpError(400, f"steps must be at least 2, got {steps}")
    seed_a, seed_b = int_param(q, "seed_a", 0, 0, MAX_SEED), int_param(q, "seed_b", 1, 0, MAX_SEED)
    assert seed_a is not None and seed_b is not None
    out = app.explorer.interpolate(q.get("run", ""), seed_a=seed_a, seed_b=seed_b, steps=steps,
                                   mode=choice_param(q, "mode", "slerp", ("slerp", "lerp")), **latent_params(q))
    out["notes"] = notes + out["notes"]
    return out


ROUTES: dict[str, Callable[[App, dict[str, str]], dict[str, Any]]] = {
    "/api/runs": api_runs, "/api/run": api_run, "/api/live": api_live,
    "/api/sample": api_sample, "/api/interpolate": api_interpolate,
}
