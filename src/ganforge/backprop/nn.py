"""Modules: containers of Parameters and buffers with torch's names and state_dict format."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

from . import functional
from . import functional as F
from . import init
from .tensor import Tensor, no_grad

__all__ = ["Parameter", "Module", "Sequential", "Linear", "Conv2d", "ConvTranspose2d",
           "BatchNorm1d", "BatchNorm2d", "Dropout", "Flatten", "Identity", "ReLU", "LeakyReLU",
           "Tanh", "Sigmoid", "functional", "init", "utils", "clip_grad_norm_", "clip_grad_value_"]


class Parameter(Tensor):
    """A Tensor that, assigned to a Module attribute, becomes one of its parameters."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class: register Parameters, buffers and sub-Modules by attribute assignment."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params or name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to {name!r}: "
                                "use a Parameter, a Module or None")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            buffers[name] = value
        # Also a plain attribute, so reading self.weight is an ordinary (fast) lookup.
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """A non-trainable array saved in state_dict (e.g. BatchNorm's running stats)."""
        self._buffers[name] = array
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, array)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all below it, with dotted names ('' for this one)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from ((k, m) for k, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once, as torch."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for k, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, mod in self.named_modules(prefix):
            for k, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mname}.{k}" if mname else k), b

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    # ------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Set training mode here and below (BatchNorm, Dropout behave differently)."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (torch's set_to_none=True)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def to(self, dtype: Any) -> Module:
        """Cast parameters and floating buffers to ``dtype`` in place."""
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for k, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f":
                    m.register_buffer(k, b.astype(dtype), k not in m._non_persistent)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------- state
    def _state_entries(self) -> Iterator[tuple[str, Module, str, bool]]:
        """(key, owning module, attribute, is_parameter) in torch's state_dict order."""
        for mname, mod in self.named_modules():
            pre = f"{mname}." if mname else ""
            for k, p in mod._parameters.items():
                if p is not None:
                    yield pre + k, mod, k, True
            for k, b in mod._buffers.items():
                if b is not None and k not in mod._non_persistent:
                    yield pre + k, mod, k, False

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of all parameters and persistent buffers, keyed by dotted name."""
        return OrderedDict(
            (key, (mod._parameters[k].data if is_param else mod._buffers[k]).copy())
            for key, mod, k, is_param in self._state_entries())

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> _IncompatibleKeys:
        """Copy arrays in by name; mismatched keys (if strict) or shapes raise before any copy."""
        entries = {key: (mod, k, is_param) for key, mod, k, is_param in self._state_entries()}
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        errors = []
        if strict and unexpected:
            errors.append(f"Unexpected key(s) in state_dict: {', '.join(unexpected)}.")
        if strict and missing:
            errors.append(f"Missing key(s) in state_dict: {', '.join(missing)}.")
        for key, (mod, k, is_param) in entries.items():
            if key not in state_dict:
                continue
            value = np.asarray(getattr(state_dict[key], "data", state_dict[key]))
            current = mod._parameters[k].data if is_param else mod._buffers[k]
            if value.shape != current.shape:
                errors.append(f"size mismatch for {key}: copying an array with shape "
                              f"{value.shape} from checkpoint, the shape in current model is "
                              f"{current.shape}.")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, (mod, k, is_param) in entries.items():
            if key in state_dict:
                target = mod._parameters[k].data if is_param else mod._buffers[k]
                target[...] = np.asarray(getattr(state_dict[key], "data", state_dict[key]))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({k}): " + repr(m).replace("\n", "\n  ") for k, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Apply modules in order."""

    def __init__(self, *modules: Module | OrderedDict) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for k, m in modules[0].items():
                setattr(self, k, m)
        else:
            for i, m in enumerate(modules):
                setattr(self, str(i), m)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, m: Module) -> Sequential:
        setattr(self, str(len(self)), m)
        return self

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x


# ----------------------------------------------------------------- layers
def _empty(shape: tuple[int, ...], dtype: Any) -> Parameter:
    return Parameter(np.empty(shape, dtype=dtype))


def _default_init(weight: Parameter, bias: Parameter | None, rng: np.random.Generator | None
                  ) -> None:
    """torch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight.shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, rng=rng)


class Linear(Module):
    """y = x @ W.T + b, W: [out_features, in_features]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), dtype)
        self.bias = _empty((out_features,), dtype) if bias else None
        _default_init(self.weight, self.bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Conv2d(Module):
    """2-d convolution, weight [out, in, kh, kw] (no groups or dilation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 bias: bool = True, *, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), stride, padding
        self.weight = _empty((out_channels, in_channels) + self.kernel_size, dtype)
        self.bias = _empty((out_channels,), dtype) if bias else None
        _default_init(self.weight, self.bias, rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class ConvTranspose2d(Module):
    """Transposed 2-d convolution, weight [in, out, kh, kw] (no groups or dilation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 output_padding: int | tuple[int, int] = 0, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), stride, padding
        self.output_padding = output_padding
        self.weight = _empty((in_channels, out_channels) + self.kernel_size, dtype)
        self.bias = _empty((out_channels,), dtype) if bias else None
        _default_init(self.weight, self.bias, rng)  # fan_in from weight.shape[1], as torch

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__} expects {' or '.join(map(str, self._ndims))}"
                             f"-d input, got shape {x.shape}")
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1  # in place: a 0-d array
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean if self.training or not use_batch else None,
                            self.running_var if self.training or not use_batch else None,
                            self.weight, self.bias, use_batch, momentum or 0.0, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over [N, C] or [N, C, L]."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over [N, C, H, W]."""
    _ndims = (4,)


class Dropout(Module):
    """Zero elements with probability p in training, scaling the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """[N, ...] -> [N, prod(...)] (from start_dim)."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim)


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


# ----------------------------------------------------------------- gradient clipping
def _grads(parameters: Iterable[Tensor] | Tensor) -> list[np.ndarray]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all grads by min(1, max_norm / (total_norm + 1e-6)); return the total norm."""
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    norms = np.array([np.linalg.norm(g.ravel(), norm_type) for g in grads])
    total = float(np.linalg.norm(norms, norm_type))  # the norm of the per-tensor norms
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is "
                           f"non-finite, so it cannot be clipped")
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return total


@no_grad()
def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every grad element into [-clip_value, clip_value]."""
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)


utils = SimpleNamespace(clip_grad_norm_=clip_grad_norm_, clip_grad_value_=clip_grad_value_)
