"""Generate from a trained run: the `Generator` behind `ganforge.load` and `ganforge sample`.

It reads config.yaml and generator.safetensors (never modifies the run): samples by seed, the
truncation trick, classes, InfoGAN codes, interpolation, class grids and code traversals; and writes
them as a PNG grid, a .npy array, a directory of PNG files, or a GIF / MP4 latent walk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from .config import Config, DataConfig
from .data import CIFAR_NAMES, DIGIT_NAMES, FASHION_NAMES, toy2d_centers
from .data.folder import class_labels, list_images
from .errors import GanforgeError
from .nets.latent import (
    check_psi,
    check_seeds,
    class_rows,
    code_to_z,
    code_values,
    interpolate as interpolate_latents,
    loop_path,
    seed_noise,
    sweep_codes,
    truncate,
)
from .nets.load import check_label, load_run_generator
from .report import save_grid, save_points
from .run import atomic_write, make_parent_dir, spec_from_config

CHUNK = 16  # G always runs on exactly this many latents (the last batch padded): see Generator
Classes = Union[int, Sequence[int], torch.Tensor, None]


class Generator:
    """A trained generator: images by seed, with truncation, classes and InfoGAN codes; interpolations.

    `ganforge.load(RUN_DIR)` makes one; `Generator(net, config)` wraps a network already built.
    Each sample's noise comes from its own seed and G runs on batches of a fixed size, so a seed gives
    the same image whatever else is asked with it (bit for bit on one machine and device).
    Images are float tensors [N, C, H, W] in [-1, 1] on the CPU (2-D point data: [N, 2]).
    """

    def __init__(self, net: torch.nn.Module, config: Config, *, run_dir: Optional[Path] = None,
                 ema: bool = False, step: Optional[int] = None) -> None:
        self.net, self.config, self.run_dir = net.eval(), config, run_dir
        self.ema, self.step = ema, step  # whether net holds EMA weights; the training step they are from
        m = config.model
        self.z_dim: int = m.z_dim
        self.info_cat: int = int(m.info_cat or 0)  # InfoGAN categories (0: none)
        self.info_cont: int = int(m.info_cont or 0)  # InfoGAN continuous codes
        self.classes: Optional[int] = m.num_classes if m.conditioning != "none" else None
        spec = spec_from_config(config)
        self.kind, self.shape = spec.kind, tuple(spec.shape)  # "image" (C, H, W) | "points" (2,)
        self.image_size: Optional[int] = spec.image_size
        self.channels: Optional[int] = spec.channels

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "auto", ema: bool = True) -> "Generator":
        """The generator of a run directory (its EMA weights when kept and ema=True) on `device`."""
        net, cfg, meta = load_run_generator(run_dir, device, ema)
        step = int(meta["step"]) if str(meta.get("step", "")).isdigit() else None
        return cls(net, cfg, run_dir=Path(run_dir), ema=meta.get("ema") == "true", step=step)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def n_noise(self) -> int:
        """Entries of z that are noise (the rest carry InfoGAN codes)."""
        return self.z_dim - self.info_cat - self.info_cont

    @cached_property
    def class_names(self) -> Optional[list[str]]:
        """Names of the classes 0..classes-1 when the data set has them, else None."""
        names = dataset_class_names(self.config.data) if self.classes else None
        return names if names is not None and len(names) == self.classes else None

    def to(self, device: str | torch.device) -> "Generator":
        """Move the network (in place) and return self."""
        self.net.to(torch.device(device))
        return self

    def __repr__(self) -> str:
        what = "x".join(map(str, self.shape))
        return (f"Generator({self.config.model.arch} {what}, z_dim={self.z_dim}, classes={self.classes}, "
                f"info_cat={self.info_cat}, info_cont={self.info_cont}, ema={self.ema}, device={self.device})")

    # ------------------------------------------------------------------ sampling

    def sample(self, n: Optional[int] = None, seed: int = 0, seeds: Optional[Sequence[int]] = None,
               classes: Classes = None, codes: Optional[Mapping[str, Any]] = None,
               truncation: Optional[float] = None) -> torch.Tensor:
        """Samples for seeds `seeds`, or for seeds seed..seed+n-1 -> [N, C, H, W] in [-1, 1].

        n defaults to the length of `classes` (or of codes["cat"]) when a sequence, else 1.
        classes: a conditional run's class, one for all or one per sample (default: seed % classes).
        codes: InfoGAN codes, {"cat": category (one, or one per sample), "cont": info_cont values in
        [-1, 1] (None keeps that code as drawn), or a [N, info_cont] array}; unset codes come from z.
        truncation: psi in [0, 1], the truncation trick z' = mean + psi (z - mean) around the mean
        latent, which is 0 for Gaussian z (1: off, 0: the mean image); InfoGAN codes are not truncated.
        """
        seeds = self._seed_list(n, seed, seeds, classes, codes)
        z = seed_noise(seeds, self.z_dim)  # [N, z]
        return self.generate(self._latents(z, codes, truncation), self._labels(seeds, classes, codes))

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, mode: str = "slerp", classes: Classes = None,
                    codes: Optional[Mapping[str, Any]] = None, truncation: Optional[float] = None) -> torch.Tensor:
        """`steps` samples from seed_a's latent to seed_b's (mode 'slerp' or 'lerp'), both ends included:
        the first and last are seed_a's and seed_b's samples. A conditional run keeps seed_a's class
        unless `classes` is given -> [steps, C, H, W]."""
        a, b = check_seeds([seed_a, seed_b])
        _check_count(steps, 2, "steps=")
        z = seed_noise([a, b], self.z_dim)  # [2, z]
        path = interpolate_latents(z[:1], z[1:], torch.linspace(0, 1, steps), mode)[0]  # [T, z]
        return self.generate(self._latents(path, codes, truncation), self._labels([a] * steps, classes, codes))

    def walk(self, seeds: Sequence[int], steps: int = 16, mode: str = "slerp", classes: Classes = None,
             codes: Optional[Mapping[str, Any]] = None, truncation: Optional[float] = None) -> torch.Tensor:
        """A closed latent walk through `seeds` (K >= 2): `steps` frames from each seed towards the next,
        the last back to the first; frame i * steps is seeds[i]'s sample. A conditional run keeps
        seeds[0]'s class unless `classes` is given -> [K * steps, C, H, W]."""
        seeds = check_seeds(seeds)
        _check_count(len(seeds), 2, "seeds= (a walk needs K >= 2)")
        _check_count(steps, 1, "steps=")
        path = loop_path(seed_noise(seeds, self.z_dim), steps, mode)  # [K*T, z]
        return self.generate(self._latents(path, codes, truncation), self._labels([seeds[0]] * len(path), classes, codes))

    def class_grid(self, seeds: Sequence[int], truncation: Optional[float] = None) -> torch.Tensor:
        """One row per class (InfoGAN: per category), column j from seeds[j] in every row -> [K * len(seeds), ...]."""
        k = self.classes or self.info_cat
        if not k:
            raise GanforgeError("class_grid: needs a conditional run (model.conditioning) or InfoGAN categories (model.info_cat)")
        z, y = class_rows(self._latents(seed_noise(check_seeds(seeds), self.z_dim), None, truncation), k)
        return self.generate(z, y)

    def traversal(self, seeds: Sequence[int], steps: int = 10, truncation: Optional[float] = None) -> tuple[torch.Tensor, int]:
        """InfoGAN code traversal, as the report draws it -> (images, columns).

        Rows: each seed's noise with each category (or each seed, without categories). Columns: each
        continuous code swept from -0.98 to 0.98 in `steps` values, one block of rows per code; without
        continuous codes, the columns are the seeds and the rows the categories.
        """
        if not (self.info_cat or self.info_cont):
            raise GanforgeError("traversal: needs an InfoGAN run (model.info_cat or model.info_cont)")
        seeds = check_seeds(seeds)
        if not self.info_cont:
            return self.class_grid(seeds, truncation), len(seeds)
        _check_count(steps, 2, "steps=")
        z = self._latents(seed_noise(seeds, self.z_dim), None, truncation)  # [S, z]
        y = None
        if self.info_cat:  # rows: seed s with category k, for each seed and category
            z, y = z.repeat_interleave(self.info_cat, 0), torch.arange(self.info_cat).repeat(len(seeds))  # [S*K]
        zs = sweep_codes(z, self.info_cont, code_values(steps))  # [n_cont * R * T, z]
        ys = y.repeat_interleave(steps).repeat(self.info_cont) if y is not None else None
        return self.generate(zs, ys), steps

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """G on latents z [N, z_dim] (labels y [N]: a conditional run's classes or InfoGAN categories),
        always in batches of exactly CHUNK rows (the last one padded) -> [N, ...] float32 on the CPU."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise GanforgeError(f"generate: z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if y is None and self.classes:
            raise GanforgeError(f"generate: a conditional generator needs labels y [N] in 0..{self.classes - 1}")
        device, out = self.device, []
        for i in range(0, z.shape[0], CHUNK):
            zc = z[i : i + CHUNK].float()
            k = zc.shape[0]
            zc = torch.cat([zc, zc.new_zeros(CHUNK - k, self.z_dim)])  # [CHUNK, z]
            yc = None
            if y is not None:
                yc = torch.cat([y[i : i + CHUNK].long(), torch.zeros(CHUNK - k, dtype=torch.long)]).to(device)
            out.append(self.net(zc.to(device), yc)[:k].float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.shape)

    @staticmethod
    def to_pil(x: torch.Tensor) -> list[Image.Image]:
        """Images [N, C, H, W] (or one [C, H, W]) in [-1, 1] -> N PIL images (mode L or RGB)."""
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise GanforgeError(f"to_pil: needs images [N, C, H, W] with 1 or 3 channels, got shape {list(x.shape)}")
        x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0).clamp(-1, 1)
        u8 = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [N, H, W, C]
        return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in u8]

    # ------------------------------------------------------------------ inputs

    def _seed_list(self, n: Optional[int], seed: int, seeds: Optional[Sequence[int]], classes: Classes,
                   codes: Optional[Mapping[str, Any]]) -> list[int]:
        if seeds is not None:
            seeds = check_seeds(seeds)
            if n is not None and n != len(seeds):
                raise GanforgeError(f"n={n} and seeds= ({len(seeds)} seeds) disagree: give one of them")
            return seeds
        if n is None:
            given = [v for v in (classes, (codes or {}).get("cat")) if v is not None and not _scalar(v)]
            n = len(given[0]) if given else 1
        _check_count(n, 1, "n=")
        first = check_seeds([seed], "seed=")[0]
        return check_seeds(range(first, first + n), "seed= + n")

    def _labels(self, seeds: Sequence[int], classes: Classes, codes: Optional[Mapping[str, Any]]) -> Optional[torch.Tensor]:
        """Labels for G: a conditional run's classes (default seed % classes), or the InfoGAN category."""
        n = len(seeds)
        if classes is not None:
            if not self.classes:
                hint = " (InfoGAN categories: codes={'cat': K})" if self.info_cat else ""
                raise GanforgeError(f"classes=: this generator is not conditional (model.conditioning is none){hint}")
            return _per_sample(classes, n, self.classes, "classes=")
        if self.classes:
            return torch.tensor([s % self.classes for s in seeds], dtype=torch.long)
        cat = _check_codes(codes, self.info_cat, self.info_cont).get("cat")
        return _per_sample(cat, n, self.info_cat, "codes['cat']") if cat is not None else None

    def _latents(self, z: torch.Tensor, codes: Optional[Mapping[str, Any]], truncation: Optional[float]) -> torch.Tensor:
        """Truncate the noise entries of z; set the continuous InfoGAN codes given in codes['cont']."""
        psi = check_psi(truncation)
        if psi is not None:
            z = truncate(z, psi, self.n_noise)
        cont = _check_codes(codes, self.info_cat, self.info_cont).get("cont")
        if cont is None:
            return z
        c = _cont_values(cont, z.shape[0], self.info_cont)  # [N, n_cont], NaN: keep
        z = z.clone()
        part = z[:, self.z_dim - self.info_cont :]
        z[:, self.z_dim - self.info_cont :] = torch.where(torch.isnan(c), part, code_to_z(c.nan_to_num(0.0)))
        return z


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) or (isinstance(v, torch.Tensor) and v.ndim == 0)


def _check_count(n: Any, low: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < low:
        raise GanforgeError(f"{what} {n!r}: must be an integer >= {low}")


def _per_sample(v: Classes, n: int, k: int, what: str) -> torch.Tensor:
    """One label for all n samples, or one per sample, each in 0..k-1 -> [n] long."""
    try:
        t = torch.as_tensor(v if not isinstance(v, torch.Tensor) else v.cpu())
    except (TypeError, ValueError, RuntimeError):
        t = torch.tensor(0.5)  # not numbers: refused below
    if t.is_floating_point() or t.dtype == torch.bool:
        raise GanforgeError(f"{what} {v!r}: must be integers in 0..{k - 1}")
    t = t.long().reshape(-1).expand(n) if t.ndim == 0 else t.long()
    if t.shape != (n,):
        raise GanforgeError(f"{what}: one value, or one per sample ({n}), got shape {list(t.shape)}")
    if len(t) and (t.min() < 0 or t.max() >= k):
        raise GanforgeError(f"{what} {t.tolist() if n <= 10 else '...'}: valid values are 0..{k - 1}")
    return t.clone()


def _check_codes(codes: Optional[Mapping[str, Any]], n_cat: int, n_cont: int) -> Mapping[str, Any]:
    if codes is None:
        return {}
    if not isinstance(codes, Mapping) or set(codes) - {"cat", "cont"}:
        raise GanforgeError("codes=: a dict with 'cat' (an InfoGAN category) and/or 'cont' (continuous code values in [-1, 1])")
    if codes.get("cat") is not None and not n_cat:
        raise GanforgeError("codes['cat']: this generator has no InfoGAN categorical code (model.info_cat is 0)")
    if codes.get("cont") is not None and not n_cont:
        raise GanforgeError("codes['cont']: this generator has no continuous InfoGAN codes (model.info_cont is 0)")
    return codes


def _cont_values(cont: Any, n: int, n_cont: int) -> torch.Tensor:
    """codes['cont'] as [n, n_cont] floats in [-1, 1] (NaN: keep the code z carries)."""
    if isinstance(cont, (list, tuple)):
        cont = [float("nan") if c is None else c for c in cont]
    try:
        c = torch.as_tensor(cont, dtype=torch.float32)
    except (TypeError, ValueError):
        raise GanforgeError(f"codes['cont']: {n_cont} numbers in [-1, 1] (None keeps a code), or an [N, {n_cont}] array") from None
    c = c.reshape(1, -1).expand(n, -1) if c.ndim <= 1 else c
    if c.shape != (n, n_cont):
        raise GanforgeError(f"codes['cont']: {n_cont} value(s), or one row per sample [{n}, {n_cont}], got shape {list(c.shape)}")
    if (c.abs() > 1).any():
        raise GanforgeError("codes['cont']: continuous codes lie in [-1, 1]")
    return c


def dataset_class_names(data: DataConfig) -> Optional[list[str]]:
    """Class names of a data set as its source names them (folder: its subfolders), or None."""
    known = {"digits": DIGIT_NAMES, "mnist": DIGIT_NAMES, "fashion-mnist": FASHION_NAMES, "cifar10": CIFAR_NAMES}
    if data.dataset in known:
        return list(known[data.dataset])
    if data.dataset.startswith("stacked"):
        return [f"{m:03d}" for m in range(1000)]
    if data.dataset == "folder" and data.path and Path(data.path).is_dir():
        files = list_images(Path(data.path))
        return class_labels(Path(data.path), files[: data.max_items] if data.max_items else files)[1]
    return None


# --------------------------------------------------------------------------- writing samples


VIDEO_SUFFIXES = (".gif", ".mp4")
MIN_FRAME = 256  # video frames are enlarged (nearest neighbour, by an integer factor) to at least this size
MAX_SEEDS = 1_000_000  # one --seeds range at most


def write_samples(x: torch.Tensor, out: str | Path, nrow: Optional[int] = None, dataset: str = "") -> Path:
    """Write samples: PATH.png a grid (nrow columns), PATH.npy the array, anything else a directory of PNG files."""
    out = Path(out)
    points = x.ndim == 2
    if out.suffix.lower() == ".npy":
        make_parent_dir(out)
        arr = x.numpy().astype(np.float32)
        atomic_write(out, lambda tmp: _save_npy(tmp, arr))
    elif out.suffix.lower() == ".png":
        if points:
            save_points(x, out, toy2d_centers(dataset)[0], title=f"{len(x)} samples")
        else:
            save_grid(x, out, nrow)
    else:
        if points:
            raise GanforgeError(f"--out {out}: {dataset} samples are 2-D points; use a .npy or .png path")
        make_parent_dir(out / "sample_00000.png")  # the directory (a failure: one line)
        for i, img in enumerate(Generator.to_pil(x)):
            atomic_write(out / f"sample_{i:05d}.png", lambda tmp, img=img: img.save(tmp, format="PNG"))
    return out


def write_video(frames: torch.Tensor, out: str | Path, fps: int = 16) -> Path:
    """Frames [F, C, H, W] in [-1, 1] -> PATH.gif (looping) or PATH.mp4 (needs imageio-ffmpeg), each frame
    enlarged (nearest neighbour) to at least MIN_FRAME pixels. A GIF merges identical consecutive frames."""
    out = Path(out)
    iio = video_module(out, f"writing {out.name}")
    arrays = np.stack([np.asarray(im) for im in _video_frames(frames)])  # [F, H, W, 3] uint8
    make_parent_dir(out)
    if out.suffix.lower() == ".gif":
        atomic_write(out, lambda tmp: iio.v3.imwrite(tmp, arrays, extension=".gif", duration=1000 / fps, loop=0))
    else:
        atomic_write(out, lambda tmp: iio.v3.imwrite(tmp, arrays, plugin="FFMPEG", extension=".mp4", fps=fps, codec="libx264",
                                                     macro_block_size=2, output_params=["-f", "mp4"]))  # tmp: no .mp4
    return out


def video_module(out: Path, what: str) -> Any:
    """imageio, once it (and for .mp4 imageio-ffmpeg) is known to be installed; GanforgeError saying what to install."""
    suffix = out.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise GanforgeError(f"{what}: a video is a .gif or .mp4 file, not '{suffix or out.name}'")
    try:
        import imageio.v2
        import imageio.v3
    except ImportError:
        raise GanforgeError(f"{what}: needs imageio: pip install imageio") from None
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise GanforgeError(f"{what}: MP4 needs the video extra: pip install 'ganforge[video]' (or: pip install imageio-ffmpeg)") from None
    return imageio


def _video_frames(x: torch.Tensor) -> list[Image.Image]:
    h, w = x.shape[-2:]
    s = max(1, math.ceil(MIN_FRAME / max(h, w)))
    s += (h * s) % 2 or (w * s) % 2  # even sides: MP4's yuv420p needs them
    return [im.resize((w * s, h * s), Image.NEAREST).convert("RGB") for im in Generator.to_pil(x)]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add .npy to the temporary name
        np.save(f, arr)


# --------------------------------------------------------------------------- `ganforge sample`


@dataclass
class SampleRequest:
    """What `ganforge sample` is asked for, its flags checked (check) before the run is read."""

    n: Optional[int] = None
    seed: Optional[int] = None
    seeds: Optional[str] = None  # --seeds text: "1,5,9" or "0-7"
    label: Optional[int] = None  # --class K
    truncation: Optional[float] = None
    class_grid: bool = False
    traverse: bool = False
    interpolate: Optional[int] = None  # --interpolate K
    steps: Optional[int] = None
    fps: Optional[int] = None

    def mode(self) -> Optional[str]:
        on = [f for f, v in (("--class-grid", self.class_grid), ("--traverse", self.traverse),
                             ("--interpolate", self.interpolate is not None)) if v]
        if len(on) > 1:
            raise GanforgeError(f"{on[0]} and {on[1]} cannot be combined: choose one picture")
        return on[0] if on else None

    def check(self, out: Path) -> None:
        """Every flag on its own and against the others (GanforgeError: one line naming the flag)."""
        mode = self.mode()
        if self.n is not None and self.n <= 0:
            raise GanforgeError(f"--n must be positive, got {self.n}")
        if self.seeds is not None and (self.n is not None or self.seed is not None):
            raise GanforgeError(f"--seeds and {'--n' if self.n is not None else '--seed'} cannot be combined: --seeds lists every seed")
        if self.seed is not None:
            check_seeds([self.seed], "--seed")
        check_psi(self.truncation, "--truncation")
        if self.label is not None and mode in ("--class-grid", "--traverse"):
            raise GanforgeError(f"--class and {mode} cannot be combined: {mode} draws every class")
        if self.steps is not None and mode not in ("--traverse", "--interpolate"):
            raise GanforgeError("--steps applies to --interpolate and --traverse only")
        if self.steps is not None and self.steps < (2 if mode == "--traverse" else 1):
            raise GanforgeError(f"--steps must be at least {2 if mode == '--traverse' else 1}, got {self.steps}")
        if self.fps is not None and (mode != "--interpolate" or not 1 <= self.fps <= 100):
            raise GanforgeError(f"--fps {self.fps}: frames per second of an --interpolate video, from 1 to 100")
        if out.suffix.lower() in VIDEO_SUFFIXES:
            if mode != "--interpolate":
                raise GanforgeError(f"--out {out}: a video needs --interpolate K (a latent walk through K seeds)")
            video_module(out, f"--out {out}")
        if mode == "--interpolate":
            self._check_walk()

    def _check_walk(self) -> None:
        k = self.interpolate
        if k is None or k < 2:
            raise GanforgeError(f"--interpolate {k}: a walk needs K >= 2 seeds")
        if self.n is not None:
            raise GanforgeError("--n does not apply to --interpolate: it walks through K seeds (--steps frames each)")
        if self.seeds is not None and len(parse_seeds(self.seeds)) != k:
            raise GanforgeError(f"--interpolate {k} with --seeds {self.seeds}: give exactly {k} seeds")

    def seed_list(self, default_n: int) -> list[int]:
        """--seeds, else --n (default_n) seeds from --seed (default 0) on."""
        if self.seeds is not None:
            return parse_seeds(self.seeds)
        first, n = self.seed or 0, self.interpolate or self.n or default_n
        return check_seeds(range(first, first + n), "--seed + --n")


def parse_seeds(text: str) -> list[int]:
    """--seeds: integers and inclusive ranges separated by commas ('1,5,9', '0-7', '0-3,10')."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        if m is None:
            raise GanforgeError(f"--seeds {text}: give integers >= 0 separated by commas, e.g. 1,5,9 or 0-7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 0 <= hi - lo < MAX_SEEDS:
            raise GanforgeError(f"--seeds {text}: a range runs from low to high, at most {MAX_SEEDS} seeds ({part.strip()})")
        seeds.extend(range(lo, hi + 1))
    return check_seeds(seeds, "--seeds")


def sample_to_path(run_dir: str | Path, n: Optional[int], out: str | Path, seed: Optional[int] = None,
                   device: str = "cpu", label: Optional[int] = None, **options: Any) -> Path:
    """`ganforge sample`: samples (by seed), a class grid, an InfoGAN traversal or a latent walk, written to
    `out` (.png grid, .npy array, .gif/.mp4 walk, or a directory of PNG files). options: SampleRequest's fields."""
    out = Path(out)
    req = SampleRequest(n=n, seed=seed, label=label, **options)
    req.check(out)
    gen = Generator.from_run(run_dir, device)
    x, nrow = _draw(gen, req)
    if out.suffix.lower() in VIDEO_SUFFIXES:
        return write_video(x, out, req.fps or 16)
    return write_samples(x, out, nrow, gen.config.data.dataset)


def _draw(gen: Generator, req: SampleRequest) -> tuple[torch.Tensor, Optional[int]]:
    """The picture `req` asks for -> (samples, grid columns or None)."""
    mode, psi = req.mode(), req.truncation
    if mode is not None and gen.kind == "points":
        raise GanforgeError(f"{mode} needs an image run: {gen.config.data.dataset} samples are 2-D points")
    check_label(gen.net, req.label)
    by_label = {} if req.label is None else {"classes": req.label} if gen.classes else {"codes": {"cat": req.label}}
    if mode == "--interpolate":
        steps = req.steps or 16
        return gen.walk(req.seed_list(2), steps, truncation=psi, **by_label), steps
    if mode == "--class-grid":
        if not (gen.classes or gen.info_cat):
            raise GanforgeError("--class-grid needs a conditional run (model.conditioning) or InfoGAN categories (model.info_cat)")
        seeds = req.seed_list(10)
        return gen.class_grid(seeds, psi), len(seeds)
    if mode == "--traverse":
        if not (gen.info_cat or gen.info_cont):
            raise GanforgeError("--traverse needs an InfoGAN run (model.info_cat or model.info_cont); this run has no codes")
        return gen.traversal(req.seed_list(1 if gen.info_cat else 3), req.steps or 10, psi)
    return gen.sample(seeds=req.seed_list(64), truncation=psi, **by_label), None
