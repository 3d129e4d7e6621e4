"""Functions on Tensors: activations, layers' maths (linear, conv, batch norm) and losses.

Losses take logits and are written with softplus, never ``log(sigmoid(x))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .tensor import Grads, Tensor, _sigmoid

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "log_softmax", "softmax",
    "linear", "conv2d", "conv_transpose2d", "batch_norm", "dropout",
    "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "cross_entropy",
]


# --------------------------------------------------------------------- activations
def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    pos = x.data > 0
    out = np.where(pos, x.data, x.data * negative_slope)
    return Tensor._make(out, (x,), lambda g: (np.where(pos, g, g * negative_slope),), "leaky_relu")


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): stable for any x; gradient sigmoid(x)."""
    d = x.data
    out = np.maximum(d, 0) + np.log1p(np.exp(-np.abs(d)))
    return Tensor._make(out, (x,), lambda g: (g * _sigmoid(d),), "softplus")


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x), shifted by the max so exp never overflows."""
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g: np.ndarray) -> Grads:
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
    return Tensor._make(out, (x,), backward, "log_softmax")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return log_softmax(x, axis).exp()


# --------------------------------------------------------------------- layers' maths
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, one node in the graph (weight: [out, in])."""
    out = np.matmul(x.data, weight.data.T)  # [..., out]
    if bias is not None:
        out += bias.data

    def backward(g: np.ndarray) -> Grads:
        gx = np.matmul(g, weight.data) if x.requires_grad else None  # [..., in]
        g2 = g.reshape(-1, g.shape[-1])  # [B, out]
        gw = np.matmul(g2.T, x.data.reshape(-1, x.shape[-1])) if weight.requires_grad else None
        gb = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(out, parents, backward, "linear")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# Convolutions work channels-last inside: a patch is ordered (kh, kw, C), so each copy or
# add below moves C contiguous floats at a time. Inputs and outputs stay [N, C, H, W].
def _to_nhwc_padded(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """[N, C, H, W] -> zero-padded [N, H + 2ph, W + 2pw, C], contiguous."""
    n, c, h, w = x.shape
    out = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    out[:, ph : ph + h, pw : pw + w] = x.transpose(0, 2, 3, 1)
    return out


def _im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Patches of a padded image as rows: [N, Hp, Wp, C] -> [N*Ho*Wo, kh*kw*C]."""
    n, c = xp.shape[0], xp.shape[3]
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # [N, Hp-kh+1, Wp-kw+1, C, kh, kw]
    win = win[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]  # [N, Ho, Wo, C, kh, kw]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kh * kw * c)


def _col2im(cols: np.ndarray, shape: tuple[int, int, int, int], sh: int, sw: int) -> np.ndarray:
    """Adjoint of _im2col: add every patch back where it came from.

    cols: [N, Ho, Wo, kh, kw, C] -> image [N, Hp, Wp, C]; one strided add per kernel offset.
    """
    ho, wo, kh, kw = cols.shape[1:5]
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            ys = slice(i, i + (ho - 1) * sh + 1, sh)  # image rows that kernel row i touches
            xs = slice(j, j + (wo - 1) * sw + 1, sw)
            out[:, ys, xs] += cols[:, :, :, i, j]  # [N, Ho, Wo, C]
    return out


def _check_conv_input(x: Tensor, channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects input [N, {channels}, H, W], got shape {x.shape}")


def _nchw(x: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> contiguous [N, C, H, W]."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> Tensor:
    """2-d cross-correlation as torch: x [N, C, H, W], weight [O, C, kh, kw] -> [N, O, Ho, Wo]."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    _check_conv_input(x, weight.shape[1], "conv2d")
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xp = _to_nhwc_padded(x.data, ph, pw)  # [N, Hp, Wp, C]
    cols = _im2col(xp, kh, kw, sh, sw, ho, wo)  # [N*Ho*Wo, kh*kw*C]
    wmat = weight.data.transpose(0, 2, 3, 1).reshape(o, -1)  # [O, kh*kw*C]
    out = np.matmul(cols, wmat.T)  # [N*Ho*Wo, O]
    if bias is not None:
        out += bias.data
    out = _nchw(out.reshape(n, ho, wo, o))  # [N, O, Ho, Wo]

    def backward(g: np.ndarray) -> Grads:
        g2 = g.transpose(0, 2, 3, 1).reshape(-1, o)  # [N*Ho*Wo, O]
        gx = gw = gb = None
        if x.requires_grad:
            dcols = np.matmul(g2, wmat).reshape(n, ho, wo, kh, kw, c)
            gx = _nchw(_col2im(dcols, xp.shape, sh, sw)[:, ph : ph + h, pw : pw + w])
        if weight.requires_grad:
            gw = np.matmul(g2.T, cols).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
        if bias is not None and bias.requires_grad:
            gb = g2.sum(axis=0)
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(out, parents, backward, "conv2d")


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                     output_padding: int | tuple[int, int] = 0) -> Tensor:
    """Transposed convolution as torch: x [N, Cin, H, W], weight [Cin, Cout, kh, kw].

    It is the gradient of conv2d with respect to its input: every input pixel paints
    a weighted kh x kw patch onto the (stride-spaced) output canvas.
    """
    (sh, sw), (ph, pw), (oph, opw) = _pair(stride), _pair(padding), _pair(output_padding)
    _check_conv_input(x, weight.shape[0], "conv_transpose2d")
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    canvas = (n, (h - 1) * sh + kh + oph, (w - 1) * sw + kw + opw, cout)  # [N, Hc, Wc, Cout]
    x2 = x.data.transpose(0, 2, 3, 1).reshape(-1, cin)  # [N*H*W, Cin]
    wmat = weight.data.transpose(0, 2, 3, 1).reshape(cin, -1)  # [Cin, kh*kw*Cout]
    cols = np.matmul(x2, wmat).reshape(n, h, w, kh, kw, cout)
    out = _col2im(cols, canvas, sh, sw)[:, ph : ph + ho, pw : pw + wo]  # [N, Ho, Wo, Cout]
    if bias is not None:
        out += bias.data
    out = _nchw(out)  # [N, Cout, Ho, Wo]

    def backward(g: np.ndarray) -> Grads:
        gp = np.zeros(canvas, dtype=g.dtype)
        gp[:, ph : ph + ho, pw : pw + wo] = g.transpose(0, 2, 3, 1)
        gcols = _im2col(gp, kh, kw, sh, sw, h, w)  # [N*H*W, kh*kw*Cout]
        gx = gw = gb = None
        if x.requires_grad:
            gx = _nchw(np.matmul(gcols, wmat.T).reshape(n, h, w, cin))
        if weight.requires_grad:
            gw = np.matmul(x2.T, gcols).reshape(cin, kh, kw, cout).transpose(0, 3, 1, 2)
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._make(out, parents, backward, "conv_transpose2d")


def batch_norm(x: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (axis 1) as torch.nn.functional.batch_norm.

    Training: batch mean and biased variance normalise; running stats (updated in place)
    take the unbiased variance. Otherwise the running stats normalise.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, -1) + (1,) * (x.ndim - 2)  # [1, C, 1, ...] broadcasts against x
    d = x.data
    if training:
        count = d.size // d.shape[1]
        mean = d.mean(axis=axes)  # [C]
        xc = d - mean.reshape(bshape)
        var = np.mean(xc * xc, axis=axes)  # biased, [C]
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (count / max(count - 1, 1))
    else:
        xc = d - running_mean.reshape(bshape)
        var = running_var
    inv_std = (1.0 / np.sqrt(var + eps)).astype(d.dtype, copy=False).reshape(bshape)
    xhat = xc * inv_std
    out = xhat * weight.data.reshape(bshape) if weight is not None else xhat.copy()
    if bias is not None:
        out += bias.data.reshape(bshape)

    def backward(g: np.ndarray) -> Grads:
        grads: list[np.ndarray | None] = [None]
        if x.requires_grad:
            gxhat = g * weight.data.reshape(bshape) if weight is not None else g
            if training:  # the batch mean and variance depend on x too
                gxhat = (gxhat - gxhat.mean(axis=axes, keepdims=True)
                         - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
            grads[0] = gxhat * inv_std
        if weight is not None:
            grads.append((g * xhat).sum(axis=axes) if weight.requires_grad else None)
        if bias is not None:
            grads.append(g.sum(axis=axes) if bias.requires_grad else None)
        return tuple(grads)
    parents = tuple(t for t in (x, weight, bias) if t is not None)
    return Tensor._make(out, parents, backward, "batch_norm")


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not training or p == 0:
        return x
    if p >= 1:
        return x * 0.0
    from . import init  # the module-level seeded generator
    rng = rng or init.get_rng()
    mask = (rng.random(x.shape) >= p).astype(x.dtype) * (1.0 / (1 - p))
    return x * Tensor(mask)


# --------------------------------------------------------------------- losses
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _as_tensor(t: Any, like: Tensor) -> Tensor:
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=like.dtype))


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, weight: Any = None,
                                     pos_weight: Any = None, reduction: str = "mean") -> Tensor:
    """-[y log s(x) + (1-y) log(1-s(x))] = (1-y) x + softplus(-x), never via log(sigmoid)."""
    y = _as_tensor(target, logits)
    sp = softplus(-logits)  # = -log(sigmoid(x))
    if pos_weight is not None:
        sp = sp * (1 + (_as_tensor(pos_weight, logits) - 1) * y)
    loss = (1 - y) * logits + sp
    if weight is not None:
        loss = loss * _as_tensor(weight, logits)
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced."""
    diff = input - _as_tensor(target, input)
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    return _reduce((input - _as_tensor(target, input)).abs(), reduction)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy: logits [N, C], integer class targets [N]."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy wants integer class targets, got {t.dtype}")
    logp = log_softmax(logits, axis=1)  # [N, C]
    return _reduce(-logp[np.arange(len(t)), t], reduction)
