"""ganforge: train GANs by backpropagation, watch the gradients, measure the images.

    import ganforge
    run = ganforge.train({"data": {"dataset": "digits"}})   # -> the run directory
    G = ganforge.load(run)                                  # -> ganforge.api.Generator

`load`, `train` and `Generator` come from ganforge.api, imported on first use: `import ganforge`
itself imports no torch. `ganforge.train` is also the training subpackage (ganforge.train.Trainer);
that module is callable, and calling it is ganforge.api.train.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = ("load", "train", "Generator")


class _CallableTrain(types.ModuleType):
    """The ganforge.train subpackage, callable as ganforge.train(config, ...) -> run directory (api.train)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import train

        return train(*args, **kwargs)


class _Package(types.ModuleType):
    """The ganforge package: when the import system binds the subpackage ganforge.train, make it callable."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and type(value) is types.ModuleType:
            value.__class__ = _CallableTrain
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """ganforge.load / ganforge.train / ganforge.Generator, imported on first use."""
    if name in _API:
        from . import api

        return getattr(api, name) if name != "train" else sys.modules[f"{__name__}.train"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *_API]
