"""Tensor: a numpy array that remembers how it was made, so gradients can flow back.

Every differentiable operation returns a new Tensor holding its parents and a small
``backward`` closure that maps the gradient of the output to the gradients of the
parents.  ``Tensor.backward()`` orders the graph topologically (iteratively, so deep
graphs do not hit Python's recursion limit) and runs those closures in reverse.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "tensor", "cat", "stack",
           "maximum", "minimum", "where"]

_GRAD_ENABLED = True

Grads = tuple["np.ndarray | None", ...]


def is_grad_enabled() -> bool:
    """Whether new operations are being recorded for backward."""
    return _GRAD_ENABLED


class _GradMode:
    """Context manager / decorator that sets grad recording on or off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.prev = True

    def __enter__(self) -> None:
        global _GRAD_ENABLED
        self.prev, _GRAD_ENABLED = _GRAD_ENABLED, self.enabled

    def __exit__(self, *exc: object) -> None:
        global _GRAD_ENABLED
        _GRAD_ENABLED = self.prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def no_grad() -> _GradMode:
    """Stop recording operations (use as ``with no_grad():`` or as a decorator)."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Record operations again inside a ``no_grad`` block."""
    return _GradMode(True)


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """numpy array with torch's dtype defaults: python floats -> float32, ints -> int64."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray | np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``: undo numpy broadcasting (leading and size-1 axes)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _is_basic_index(idx: Any) -> bool:
    """True for ints/slices/None/Ellipsis only: such an index never repeats an element."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, int | slice | type(None) | type(Ellipsis)) and not isinstance(i, bool)
               for i in items)


def _axis_args(axis: Any, keepdims: bool, dim: Any, keepdim: bool) -> tuple[Any, bool]:
    """Merge numpy-style (axis, keepdims) and torch-style (dim, keepdim) arguments."""
    axis = dim if dim is not None else axis
    return (tuple(axis) if isinstance(axis, list) else axis), bool(keepdims or keepdim)


class Tensor:
    """An n-d array with an optional gradient, recording operations for ``backward``."""

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op",
                 "_retain_grad", "__weakref__")
    __array_priority__ = 1000  # make ``ndarray * Tensor`` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {self.data.dtype}")
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable[[np.ndarray], Grads] | None = None
        self._op = ""
        self._retain_grad = False

    # ----------------------------------------------------------------- graph plumbing
    @staticmethod
    def _make(data: np.ndarray, parents: tuple[Tensor, ...],
              backward: Callable[[np.ndarray], Grads], op: str) -> Tensor:
        """Wrap an op's result; link it to its parents when any of them needs a grad."""
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._op = op
        out._retain_grad = False
        if _GRAD_ENABLED and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
        return out

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an operation."""
        return self._backward is None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this intermediate tensor after backward."""
        self._retain_grad = True

    def _accumulate(self, g: np.ndarray) -> None:
        if g.shape != self.data.shape:
            g = np.broadcast_to(g, self.data.shape)
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype)  # own copy: g may alias other grads
        else:
            self.grad += g

    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            g = np.broadcast_to(g, self.data.shape)

        # Iterative depth-first search: post-order = every node after all its inputs.
        order: list[Tensor] = []
        seen: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for p in node._parents:
                if p.requires_grad and id(p) not in seen:
                    stack.append((p, False))

        grads: dict[int, np.ndarray] = {id(self): g}
        for node in reversed(order):  # outputs first, inputs last
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:
                node._accumulate(g)
                continue
            if node._retain_grad:
                node._accumulate(g)
            for p, pg in zip(node._parents, node._backward(g)):
                if pg is None or not p.requires_grad:
                    continue
                k = id(p)
                grads[k] = grads[k] + pg if k in grads else pg

    # ----------------------------------------------------------------- conveniences
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float:
        """The single value as a python number."""
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied, like torch)."""
        return self.data

    def detach(self) -> Tensor:
        """Same data, cut from the graph."""
        return Tensor._make(self.data, (), lambda g: (), "detach")

    def zero_(self) -> Tensor:
        """Fill with zeros in place."""
        self.data[...] = 0
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4)}, dtype={self.dtype}{extra})"

    # ----------------------------------------------------------------- arithmetic
    def _lift(self, other: Any) -> Tensor:
        """Turn a python number or array into a constant Tensor (numbers take our dtype)."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, int | float):
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(other)

    def __add__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)

        def backward(g: np.ndarray) -> Grads:
            return (_unbroadcast(g, a.shape) if a.requires_grad else None,
                    _unbroadcast(g, b.shape) if b.requires_grad else None)
        return Tensor._make(a.data + b.data, (a, b), backward, "add")

    def __sub__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)

        def backward(g: np.ndarray) -> Grads:
            return (_unbroadcast(g, a.shape) if a.requires_grad else None,
                    _unbroadcast(-g, b.shape) if b.requires_grad else None)
        return Tensor._make(a.data - b.data, (a, b), backward, "sub")

    def __mul__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)

        def backward(g: np.ndarray) -> Grads:
            return (_unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
        return Tensor._make(a.data * b.data, (a, b), backward, "mul")

    def __truediv__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)
        out = a.data / b.data

        def backward(g: np.ndarray) -> Grads:
            return (_unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None)
        return Tensor._make(out, (a, b), backward, "div")

    def __pow__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)
        out = a.data ** b.data

        def backward(g: np.ndarray) -> Grads:
            ga = gb = None
            if a.requires_grad:
                ga = _unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape)
            if b.requires_grad:
                gb = _unbroadcast(g * out * np.log(a.data), b.shape)
            return ga, gb
        return Tensor._make(out, (a, b), backward, "pow")

    def __radd__(self, other: Any) -> Tensor:
        return self._lift(other) + self

    def __rsub__(self, other: Any) -> Tensor:
        return self._lift(other) - self

    def __rmul__(self, other: Any) -> Tensor:
        return self._lift(other) * self

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._lift(other) / self

    def __rpow__(self, other: Any) -> Tensor:
        return self._lift(other) ** self

    def __neg__(self) -> Tensor:
        return Tensor._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __matmul__(self, other: Any) -> Tensor:
        a, b = self, self._lift(other)
        # 1-d operands follow np.matmul: promote to matrices, drop the axis again after.
        A = a.data[None, :] if a.ndim == 1 else a.data  # [..., n, k]
        B = b.data[:, None] if b.ndim == 1 else b.data  # [..., k, m]
        out = np.matmul(A, B)  # [..., n, m]

        def backward(g: np.ndarray) -> Grads:
            G = g.reshape(out.shape)  # [..., n, m]
            ga = gb = None
            if a.requires_grad:
                ga = _unbroadcast(np.matmul(G, np.swapaxes(B, -1, -2)), A.shape).reshape(a.shape)
            if b.requires_grad:
                gb = _unbroadcast(np.matmul(np.swapaxes(A, -1, -2), G), B.shape).reshape(b.shape)
            return ga, gb
        if a.ndim == 1:
            out_view = out[..., 0, :] if b.ndim > 1 else out[..., 0, 0]
        elif b.ndim == 1:
            out_view = out[..., 0]
        else:
            out_view = out
        return Tensor._make(out_view, (a, b), backward, "matmul")

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._lift(other) @ self

    # ----------------------------------------------------------------- reductions
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, *,
            dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None); torch's ``dim``/``keepdim`` also work."""
        a = self
        axis, keepdims = _axis_args(axis, keepdims, dim, keepdim)

        def backward(g: np.ndarray) -> Grads:
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, a.shape),)
        return Tensor._make(np.sum(a.data, axis=axis, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, *,
             dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes when None); torch's ``dim``/``keepdim`` also work."""
        axis, keepdims = _axis_args(axis, keepdims, dim, keepdim)
        n = self.data.size if axis is None else int(np.prod(
            [self.shape[i] for i in np.atleast_1d(axis)]))
        return self.sum(axis, keepdims) * (1.0 / max(n, 1))

    # ----------------------------------------------------------------- shape ops
    def reshape(self, *shape: Any) -> Tensor:
        """Same data, new shape (``-1`` allowed)."""
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        a = self
        return Tensor._make(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),), "reshape")

    view = reshape

    def flatten(self, start_dim: int = 0) -> Tensor:
        """Merge axes from ``start_dim`` on into one."""
        return self.reshape(self.shape[:start_dim] + (-1,))

    def permute(self, *axes: Any) -> Tensor:
        """Reorder axes."""
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        inverse = tuple(np.argsort(axes))
        return Tensor._make(self.data.transpose(axes), (self,),
                            lambda g: (g.transpose(inverse),), "permute")

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes."""
        return Tensor._make(np.swapaxes(self.data, dim0, dim1), (self,),
                            lambda g: (np.swapaxes(g, dim0, dim1),), "transpose")

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, idx: Any) -> Tensor:
        a = self
        if isinstance(idx, Tensor):
            idx = idx.data
        elif isinstance(idx, tuple):
            idx = tuple(i.data if isinstance(i, Tensor) else i for i in idx)
        basic = _is_basic_index(idx)

        def backward(g: np.ndarray) -> Grads:
            full = np.zeros(a.shape, dtype=g.dtype)
            if basic:
                full[idx] = g  # a basic index hits each element at most once
            else:
                np.add.at(full, idx, g)  # repeated indices must add up
            return (full,)
        return Tensor._make(a.data[idx], (a,), backward, "getitem")

    def to(self, dtype: Any) -> Tensor:
        """Differentiable cast to another float dtype."""
        src = self.dtype
        return Tensor._make(self.data.astype(dtype), (self,), lambda g: (g.astype(src),), "cast")

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    # ----------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> Tensor:
        x = self.data
        return Tensor._make(np.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> Tensor:
        out = np.sqrt(self.data)
        return Tensor._make(out, (self,), lambda g: (g / (2 * out),), "sqrt")

    def abs(self) -> Tensor:
        x = self.data
        return Tensor._make(np.abs(x), (self,), lambda g: (g * np.sign(x),), "abs")

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Clamp into [min, max]; the gradient passes where min <= x <= max (as torch)."""
        x = self.data

        def backward(g: np.ndarray) -> Grads:
            keep = np.ones(x.shape, dtype=bool)
            if min is not None:
                keep &= x >= min
            if max is not None:
                keep &= x <= max
            return (g * keep,)
        return Tensor._make(np.clip(x, min, max), (self,), backward, "clip")

    clamp = clip

    def relu(self) -> Tensor:
        x = self.data
        return Tensor._make(np.maximum(x, 0), (self,), lambda g: (g * (x > 0),), "relu")

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)
        return Tensor._make(out, (self,), lambda g: (g * (1 - out * out),), "tanh")

    def sigmoid(self) -> Tensor:
        out = _sigmoid(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out * (1 - out),), "sigmoid")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Create a Tensor (torch-style spelling)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def maximum(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise max; at ties each side gets half the gradient (as torch)."""
    b = a._lift(b)
    out = np.maximum(a.data, b.data)

    def backward(g: np.ndarray) -> Grads:
        share = np.where(a.data > b.data, 1.0, np.where(a.data == b.data, 0.5, 0.0))
        return (_unbroadcast(g * share, a.shape) if a.requires_grad else None,
                _unbroadcast(g * (1 - share), b.shape) if b.requires_grad else None)
    return Tensor._make(out, (a, b), backward, "maximum")


def minimum(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise min; at ties each side gets half the gradient (as torch)."""
    return -maximum(-a, -a._lift(b))


def where(cond: Any, a: Tensor, b: Tensor | float) -> Tensor:
    """Pick from ``a`` where ``cond`` holds, else from ``b``."""
    b = a._lift(b)
    c = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)

    def backward(g: np.ndarray) -> Grads:
        return (_unbroadcast(np.where(c, g, 0), a.shape) if a.requires_grad else None,
                _unbroadcast(np.where(c, 0, g), b.shape) if b.requires_grad else None)
    return Tensor._make(np.where(c, a.data, b.data), (a, b), backward, "where")


def cat(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    ts = tuple(tensors)
    splits = np.cumsum([t.shape[axis] for t in ts])[:-1]

    def backward(g: np.ndarray) -> Grads:
        return tuple(np.split(g, splits, axis=axis))
    return Tensor._make(np.concatenate([t.data for t in ts], axis=axis), ts, backward, "cat")


concatenate = cat


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along a new axis."""
    ts = tuple(tensors)

    def backward(g: np.ndarray) -> Grads:
        return tuple(np.moveaxis(g, axis, 0))
    return Tensor._make(np.stack([t.data for t in ts], axis=axis), ts, backward, "stack")
