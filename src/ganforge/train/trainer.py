"""A training run from a config: the loop (train/loop.py) over the engine that train.engine names."""

from __future__ import annotations

from typing import Optional

import torch

from ..config import Config
from .loop import EvalHook, TrainLoop, check_config
from .numpy_engine import NumpyEngine
from .torch_engine import TorchEngine


class Trainer(TrainLoop):
    """TrainLoop over TorchEngine (--engine torch) or NumpyEngine (--engine numpy, ganforge.backprop)."""

    def __init__(self, cfg: Config, device: Optional[torch.device] = None, progress: bool = False,
                 eval_hook: Optional[EvalHook] = None) -> None:
        check_config(cfg)  # before any data is read or a run directory made
        if cfg.train.engine == "numpy":
            engine: object = NumpyEngine(cfg, progress)
        else:
            engine = TorchEngine(cfg, device, progress)
        super().__init__(engine, eval_hook)  # type: ignore[arg-type]


__all__ = ["Trainer"]
