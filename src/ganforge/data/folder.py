"""Image folders: any mix of png/jpg/jpeg/bmp/webp, any letter case, recursive; class subfolders give labels."""

from __future__ import annotations

import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image, ImageOps

from .base import EpochSampler, Source, Spec, to_unit_range

log = logging.getLogger("ganforge")

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# Uncompressed bytes above which a folder streams from disk instead of being held in memory.
MEMORY_LIMIT_BYTES = 1 << 30


def list_images(root: Path) -> list[Path]:
    """Image files under root, sorted; symlinked directories are not followed (no loops)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def class_labels(root: Path, files: list[Path]) -> tuple[Optional[list[int]], Optional[list[str]]]:
    """Labels from first-level subfolders when every image sits in one and there are at least two."""
    tops = [f.relative_to(root).parts for f in files]
    if not tops or any(len(p) < 2 for p in tops):
        return None, None
    names = sorted({p[0] for p in tops})
    if len(names) < 2:
        return None, None
    index = {n: i for i, n in enumerate(names)}
    return [index[p[0]] for p in tops], names


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 [C, size, size]: EXIF orientation applied, shorter side resized, centre-cropped.

    Raises on anything unreadable (truncated, not an image, decompression bomb, not a regular file).
    """
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block open() forever
        raise OSError(f"not a regular file: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im = _to_mode(im, channels)
            w, h = im.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            im = im.resize((nw, nh), Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS)
            left, top = (nw - size) // 2, (nh - size) // 2
            im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]  # [H, W, 1]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))  # [C, H, W]


def _to_mode(im: Image.Image, channels: int) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        # 16-bit modes span 0..65535 even when an image is dark; a 32-bit "I" image may hold 8-bit values.
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray((arr / hi * 255).round().clip(0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        # Transparent pixels become white, as an image viewer would show them.
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im.convert("RGBA"))
    return im.convert("L" if channels == 1 else "RGB")


class FolderDataset(torch.utils.data.Dataset):
    """Decodes images on demand (for streaming); a file that fails is skipped for the next one."""

    def __init__(self, files: list[Path], labels: Optional[list[int]], size: int, channels: int) -> None:
        self.files, self.labels, self.size, self.channels = files, labels, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for k in range(min(len(self.files), 50)):
            j = (i + k) % len(self.files)
            try:
                x = load_image(self.files[j], self.size, self.channels)
            except Exception as e:  # noqa: BLE001 - any decoder failure means "skip this file"
                log.warning("skipping unreadable image %s (%s)", self.files[j], type(e).__name__)
                continue
            return torch.from_numpy(x), (self.labels[j] if self.labels is not None else -1)
        raise RuntimeError(f"50 unreadable images in a row near {self.files[i]}")


def load_folder_into_memory(
    files: list[Path], size: int, channels: int, progress: bool = False
) -> tuple[torch.Tensor, list[int], list[Path]]:
    """Decode every file; returns uint8 [N, C, size, size], the kept indices and the skipped paths."""
    arrays, kept, skipped = [], [], []
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc="loading images", unit="img", leave=False)
    for i, f in enumerate(it):
        try:
            arrays.append(load_image(f, size, channels))
            kept.append(i)
        except Exception as e:  # noqa: BLE001 - any decoder failure means "skip this file"
            skipped.append(f)
            log.warning("skipping unreadable image %s (%s: %s)", f, type(e).__name__, str(e)[:120])
    x = torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, channels, size, size, dtype=torch.uint8)
    return x, kept, skipped


class StreamSource(Source):
    """A large image folder streamed through a DataLoader with worker processes."""

    def __init__(
        self, name: str, dataset: FolderDataset, spec: Spec, seed: int, batch_size: int, workers: int, device: torch.device
    ) -> None:
        self.name, self.spec, self.device = name, spec, device
        self.dataset = dataset
        self.sampler = EpochSampler(len(dataset), seed)
        self.batch_size = batch_size
        self.workers = workers
        self.consumed = 0  # samples handed to the trainer: the resume point
        self._iter: Optional[Any] = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _make_iter(self) -> Any:
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=iter(self.sampler),
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.workers > 0,
            drop_last=True,
        )
        return iter(loader)

    def batch(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if n != self.batch_size:
            raise ValueError(f"streamed source built for batch {self.batch_size}, asked for {n}")
        if self._iter is None:
            self._snapshot = self.sampler.state_dict()
            self._iter = self._make_iter()
        x, y = next(self._iter)
        self.consumed += n
        x = to_unit_range(x.to(self.device, non_blocking=True))
        y = y.to(self.device) if self.spec.num_classes else None
        return x, y

    def state_dict(self) -> dict[str, Any]:
        # The workers read ahead of the trainer: store where the iterator started and how much was used.
        start = getattr(self, "_snapshot", None) or self.sampler.state_dict()
        return {"sampler": start, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.sampler.take(int(state["consumed"]))  # skip what was used, without decoding it
        self._snapshot = self.sampler.state_dict()
        self.consumed = 0
        self._iter = None

    def close(self) -> None:
        self._iter = None
