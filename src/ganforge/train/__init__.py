"""Training: the loop, optimisers and schedules, checkpoints, run directories."""

from .rundir import RunDir, read_stats
from .trainer import Trainer, config_diff, layer_grad_norms, pick_device, spec_from_config

__all__ = ["RunDir", "Trainer", "config_diff", "layer_grad_norms", "pick_device", "read_stats", "spec_from_config"]
