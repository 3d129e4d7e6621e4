"""Data sources: the few things the trainer needs from real data, held in memory or streamed."""

from __future__ import annotations

import logging
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F

from ..run.spec import Spec  # noqa: F401  (re-exported: ganforge.data.Spec)

log = logging.getLogger("ganforge")


class Source:
    """A registered data source. `batch(n)` returns (x on the device, labels or None)."""

    spec: Spec
    name: str

    def batch(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass

    def shard(self, rank: int, world: int, seed: int) -> None:
        """Draw only this rank's share of each epoch (multi-process training)."""
        sampler = getattr(self, "sampler", None)
        if sampler is not None:
            self.sampler = EpochSampler(sampler.perm_size, seed, rank, world)


class EpochSampler:
    """Indices in a fresh random permutation each epoch, drawn from its own generator.

    Its state (generator state, current permutation, position) goes into checkpoints, so a
    resumed run sees exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.rank, self.world = rank, world  # each rank takes every world-th index of the permutation
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = self._permutation(n)
        self.perm_size, self.n = n, len(self.perm)
        self.pos = 0

    def _permutation(self, n: int) -> torch.Tensor:
        perm = torch.randperm(n, generator=self.gen)
        return perm[self.rank :: self.world] if self.world > 1 else perm

    def take(self, k: int) -> torch.Tensor:
        parts = []
        while k > 0:
            if self.pos >= self.n:
                self.perm = self._permutation(self.perm_size)
                self.pos = 0
            got = self.perm[self.pos : self.pos + k]
            self.pos += len(got)
            k -= len(got)
            parts.append(got)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def __iter__(self) -> Iterator[int]:
        while True:
            yield int(self.take(1)[0])

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]; float tensors pass through."""
    if x.dtype == torch.uint8:
        return x.float().div_(127.5).sub_(1.0)
    return x.float()


def adapt_images(x: torch.Tensor, channels: Optional[int], size: Optional[int]) -> torch.Tensor:
    """Convert a [N, C, H, W] stack (uint8 or float in [-1, 1]) to the requested channels and square size.

    Resizing keeps the dtype: uint8 stays uint8 (rounded), so large data sets stay compact.
    """
    if channels is not None and channels != x.shape[1]:
        if channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1).contiguous()  # [N, 3, H, W]
        elif channels == 1 and x.shape[1] == 3:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            y = (x.float() * w).sum(1, keepdim=True)  # [N, 1, H, W]
            x = y.round().clamp(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else y
        else:
            raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
    if size is not None and (x.shape[-1] != size or x.shape[-2] != size):
        x = _center_crop_resize(x, size)
    return x


def _center_crop_resize(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[..., top : top + s, left : left + s]  # [N, C, s, s]
    out = []
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=s > size)
        if x.dtype == torch.uint8:
            part = part.round().clamp(0, 255).to(torch.uint8)
        out.append(part)
    return torch.cat(out)  # [N, C, size, size]


class InMemorySource(Source):
    """A data set held as one tensor (on the training device) and sampled by index, no DataLoader."""

    def __init__(
        self,
        name: str,
        images: torch.Tensor,
        labels: Optional[torch.Tensor],
        spec: Spec,
        seed: int,
        device: torch.device,
    ) -> None:
        self.name = name
        self.spec = spec
        self.images = images.to(device)  # [N, C, H, W], uint8 or float in [-1, 1]
        self.labels = labels.to(device) if labels is not None else None
        self.sampler = EpochSampler(len(images), seed)
        self.device = device

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        idx = self.sampler.take(n).to(self.device)
        x = to_unit_range(self.images[idx])
        y = self.labels[idx] if self.labels is not None else None
        return x, y

    def all_images(self, limit: Optional[int] = None) -> torch.Tensor:
        x = self.images if limit is None else self.images[:limit]
        return to_unit_range(x)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
