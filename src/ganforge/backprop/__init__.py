"""A from-scratch reverse-mode autodiff engine in numpy, with torch's names.

    from ganforge.backprop import Tensor, nn, optim, functional as F

Small enough to read in an afternoon; checked against torch autograd in the tests.
It never imports torch.
"""

from . import functional, gan, init, lr_scheduler, models, nn, optim
from .init import manual_seed
from .tensor import (Tensor, cat, concatenate, enable_grad, is_grad_enabled, maximum, minimum,
                     no_grad, stack, tensor, where)

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled", "cat", "concatenate",
           "stack", "maximum", "minimum", "where", "manual_seed", "functional", "init", "nn",
           "optim", "lr_scheduler", "gan", "models"]
