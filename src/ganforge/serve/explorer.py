"""The latent explorer: samples by seed, truncation, class and InfoGAN codes, walks between two seeds,
and each sample's nearest training image.

Generators come from the Python API (`ganforge.load`), cached per run and keyed by the weights
file's (size, mtime): a run still training is reloaded when it writes new weights. The nearest
training image is `ganforge eval`'s memorisation search (same reference set, same features, same
cache), so the picture here and the number there agree.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from PIL import Image

from ..api import Generator, load
from ..errors import GanforgeError
from ..report import image_grid
from ..run import RunDir
from .nearest import NearestIndex, nearest_index
from .paths import HttpError, RunsRoot

CACHE_GENERATORS = 4  # generators kept in memory (least recently used dropped)


@dataclass
class Loaded:
    """One run's generator as loaded, with the stamp of the weights it was loaded from."""

    stamp: tuple[int, int]
    G: Generator
    lock: threading.Lock = field(default_factory=threading.Lock)  # one forward pass at a time per generator


def weights_stamp(run: RunDir, name: str) -> tuple[int, int]:
    """(size, mtime_ns) of the run's generator weights; 409 if it has none yet, 404 if it is gone."""
    try:
        st = run.generator.stat()
    except OSError:
        if not run.path.is_dir():
            raise HttpError(404, f"run '{name}' does not exist (deleted?)") from None
        raise HttpError(409, f"run '{name}' has no weights yet ({run.generator.name} is written at the first checkpoint)") from None
    return st.st_size, st.st_mtime_ns


def png_uri(x: torch.Tensor) -> str:
    """One image [C, H, W] in [-1, 1] as a data: URI of a PNG at its own resolution."""
    arr = image_grid(x[None], nrow=1, pad=0, min_cell=0)  # [H, W, 3]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Explorer:
    """Answers /api/sample and /api/interpolate for the runs under one root."""

    def __init__(self, root: RunsRoot, device: str = "cpu", size: int = CACHE_GENERATORS) -> None:
        self.root, self.device, self.size = root, device, size
        self._models: OrderedDict[Any, Loaded] = OrderedDict()
        self._lock = threading.Lock()  # guards _models
        self._loading = threading.Lock()  # one load at a time: 20 first requests load a run once

    def model(self, name: str) -> Loaded:
        """The run's generator, loaded again if its weights changed since."""
        run = self.root.run(name)
        stamp = weights_stamp(run, name)
        with self._lock:
            hit = self._models.get(run.path)
        if hit is not None and hit.stamp == stamp:
            return hit
        with self._loading:
            with self._lock:
                hit = self._models.get(run.path)
            if hit is not None and hit.stamp == weights_stamp(run, name):
                return hit
            loaded = self._load(run, name)
            with self._lock:
                self._models[run.path] = loaded
                self._models.move_to_end(run.path)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
        return loaded

    def _load(self, run: RunDir, name: str) -> Loaded:
        """Load the generator (ganforge.load); the stamp is taken first (a newer file is seen next time)."""
        stamp = weights_stamp(run, name)
        try:
            G = load(run.path, device=self.device)
        except GanforgeError as e:
            if not run.generator.is_file():  # removed between the stat and the read
                raise HttpError(409, f"run '{name}' has no weights yet") from None
            raise HttpError(400, f"run '{name}': {e}") from None
        if G.kind != "image":
            raise HttpError(400, f"run '{name}' generates 2-D points ({G.config.data.dataset}); the explorer shows images")
        return Loaded(stamp, G)

    def sample(self, name: str, *, seed: int, n: int, truncation: Optional[float], nearest: bool,
               label: Optional[int] = None, cat: Optional[int] = None, cont: Optional[list[float]] = None) -> dict[str, Any]:
        """n samples from seeds seed..seed+n-1 (a class `label`, InfoGAN codes `cat` and `cont`),
        each with its nearest training image."""
        m = self.model(name)
        given = conditions(m.G, label, cat, cont)
        with m.lock:
            x = _checked(lambda: m.G.sample(n, seed=seed, truncation=truncation, **given))
        return self._answer(m, x, nearest)

    def interpolate(self, name: str, *, seed_a: int, seed_b: int, steps: int, mode: str, truncation: Optional[float],
                    nearest: bool, label: Optional[int] = None, cat: Optional[int] = None,
                    cont: Optional[list[float]] = None) -> dict[str, Any]:
        """The walk from seed_a to seed_b in `steps` frames, each with its nearest training image."""
        m = self.model(name)
        given = conditions(m.G, label, cat, cont)
        with m.lock:
            x = _checked(lambda: m.G.interpolate(seed_a, seed_b, steps, mode, truncation=truncation, **given))
        return self._answer(m, x, nearest)

    def describe(self, name: str) -> dict[str, Any]:
        """What the explorer's controls offer for this run: classes, InfoGAN codes, image size."""
        G = self.model(name).G
        return {"classes": G.classes, "class_names": G.class_names, "info_cat": G.info_cat, "info_cont": G.info_cont,
                "image_size": G.image_size, "channels": G.channels, "z_dim": G.z_dim, "ema": G.ema, "step": G.step}

    def _answer(self, m: Loaded, x: torch.Tensor, nearest: bool) -> dict[str, Any]:
        """The JSON answer: images as PNG data URIs and, if asked, their nearest training images."""
        x = x.detach().float().cpu()  # [N, C, H, W]
        out: dict[str, Any] = {"images": [png_uri(im) for im in x], "notes": []}
        if not nearest:
            return out
        index = nearest_index(m.G.config)
        out["nearest"], out["nearest_pending"] = None, index is None
        if isinstance(index, NearestIndex):
            out["nearest"] = index.query(x, png_uri)
        elif index is None:
            out["notes"].append("nearest training images: computing the training set's features (once per data set); ask again shortly")
        else:
            out["notes"].append(f"no nearest training images: {index}")
        return out

    def prepare(self, name: str) -> None:
        """Start building the nearest-image index of a run's data (a run is opened: it is likely needed)."""
        nearest_index(self.model(name).G.config)


def conditions(G: Generator, label: Optional[int], cat: Optional[int], cont: Optional[list[float]]) -> dict[str, Any]:
    """The API's classes= and codes= for an HTTP request's class, cat and codes; 400 if the run has no such input."""
    out: dict[str, Any] = {}
    if label is not None:
        if not G.classes:
            hint = f"; its InfoGAN category is cat=0..{G.info_cat - 1}" if G.info_cat else ""
            raise HttpError(400, f"class: this run is not conditional (model.conditioning is none){hint}")
        if label >= G.classes:
            raise HttpError(400, f"class must be between 0 and {G.classes - 1}, got {label}")
        out["classes"] = label
    codes: dict[str, Any] = {}
    if cat is not None:
        if not G.info_cat or cat >= G.info_cat:
            raise HttpError(400, f"cat: this run's InfoGAN categories are {_range(G.info_cat)}, got {cat}")
        codes["cat"] = cat
    if cont is not None:
        if len(cont) != G.info_cont:
            raise HttpError(400, f"codes: this run has {G.info_cont} continuous InfoGAN code(s), got {len(cont)} value(s)")
        codes["cont"] = cont
    if codes:
        out["codes"] = codes
    return out


def _range(k: int) -> str:
    """'0..k-1', or 'none' for k = 0."""
    return f"0..{k - 1}" if k else "none"


def _checked(make: Any) -> torch.Tensor:
    """make(), with the API's GanforgeError (a bad class, code or truncation) as a 400."""
    try:
        x = make()
    except GanforgeError as e:
        raise HttpError(400, str(e)) from None
    if x.ndim != 4:
        raise HttpError(400, f"this generator makes {x.ndim - 1}-D items, not images")
    return x
