"""What the training loop (train/loop.py) asks of an engine. Two implement it: TorchEngine
(train/torch_engine.py, the production path) and NumpyEngine (train/numpy_engine.py, on the
from-scratch ganforge.backprop)."""

from __future__ import annotations

from typing import Any, ContextManager, Optional, Protocol

import torch

from ..config import Config
from ..data import Source
from ..nets import resolve_arch, resolve_labels

Batch = tuple[Any, Optional[torch.Tensor]]  # (real images or points, labels or None)


class Engine(Protocol):
    cfg: Config  # resolved: arch, image size and channels as they ran
    source: Source
    rank: int  # this process's rank (0 in a single process)
    world: int  # processes training together (torchrun), 1 in a single process
    title: str  # added to sample plot titles, e.g. " (numpy engine)"

    def nets(self) -> dict[str, Any]:
        """{"G": G, "D": D}: what the watchdog checks and the statistics name."""

    def batch(self) -> Batch:
        """The next real batch, ready for the engine's networks."""

    def set_lr(self, lr_g: float, lr_d: float) -> None:
        """Both optimisers' learning rates for the next step."""

    def set_schedule(self, step: int, steps: int) -> None:
        """The ramps' values (R3GAN: penalty gamma, Adam's beta2, EMA) for update `step` of `steps`."""

    def step(self, batches: list[Batch], grads: bool) -> None:
        """A D update on each batch, then a G update on the last; `grads`: report per-layer norms."""

    def session(self, watchdog: Any) -> ContextManager:
        """While training: the phases queue their gradient norms with the watchdog."""

    def train_mode(self) -> None:
        """G and D in training mode."""

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, data position, RNG and fixed noise as tensors and plain values."""

    def load_state_dict(self, state: dict[str, Any], where: str) -> None:
        """The inverse of state_dict; `where` names the source in errors."""

    def after_resume(self, step: int) -> None:
        """Per-process adjustments after a checkpoint was loaded (multi-process: each rank's noise)."""

    def generator_weights(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """G's weights for generator.safetensors (its EMA when kept) and extra metadata."""

    def sample_grid(self) -> tuple[torch.Tensor, Optional[int]]:
        """G's samples from the fixed noise (as a CPU or device tensor) and the grid's columns."""

    def eval_generator(self) -> tuple[torch.nn.Module, bool]:
        """(the torch generator to evaluate, whether it is an EMA)."""

    def gather(self, record: dict[str, Any]) -> Optional[dict[str, Any]]:
        """A stats record as the mean over processes (None on ranks > 0)."""

    def probe(self) -> Any:
        """What the alarms measure: an object with .G (torch-callable), .fixed_z, .source and .cfg."""

    def close(self) -> None:
        """Release the data source and any process group."""


def resolve(cfg: Config, source: Source) -> Config:
    """A copy of cfg with "auto" and native sizes resolved, so that config.yaml states exactly what ran."""
    spec = source.spec
    cfg = cfg.copy()
    cfg.model.arch = resolve_arch(cfg.model, spec)
    resolve_labels(cfg.model, spec, cfg.data.dataset)  # model.num_classes for conditional runs
    if spec.kind == "image":
        cfg.data.channels, cfg.data.image_size = spec.channels, spec.image_size
    return cfg


__all__ = ["Engine", "Batch", "resolve"]
