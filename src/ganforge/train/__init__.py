"""Training: one loop (loop.py) over two engines (torch_engine.py, numpy_engine.py); optimisers and
schedules, EMA, gradient flow, the divergence watchdog, the GPU fast path and multi-process runs."""

from .gradflow import layer_grad_norms
from .loop import TrainLoop, config_diff
from .trainer import Trainer

__all__ = ["TrainLoop", "Trainer", "config_diff", "layer_grad_norms"]
