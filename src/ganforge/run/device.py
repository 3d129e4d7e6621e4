"""Where to compute: --device auto | cpu | cuda | cuda:N."""

from __future__ import annotations

import torch

from ..errors import GanforgeError


def pick_device(name: str) -> torch.device:
    """The torch device for a --device value; a clear error when CUDA is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanforgeError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)
