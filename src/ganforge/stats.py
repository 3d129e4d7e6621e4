"""Statistics are reported, not threaded through calls.

Anywhere in the code: `stats.report("grad/D/net.0", value)`. The trainer owns one collector, and at
each log interval `stats.collect()` returns the mean of every name reported since the last call.
Tensor values stay on their device until then, so reporting costs no host synchronisation.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Union

import torch

Number = Union[float, int, torch.Tensor]

_sums: dict[str, Union[float, torch.Tensor]] = {}
_counts: dict[str, int] = {}
_enabled = True


def report(name: str, value: Number) -> None:
    """Add one observation of `name` (a number or a tensor, averaged over its elements)."""
    if not _enabled:
        return
    if isinstance(value, torch.Tensor):
        value = value.detach().float().mean()
    else:
        value = float(value)
    prev = _sums.get(name)
    _sums[name] = value if prev is None else prev + value
    _counts[name] = _counts.get(name, 0) + 1


def collect() -> dict[str, float]:
    """Means since the last collect(); clears the accumulators. NaN and inf are kept, not hidden."""
    out = {name: float(total) / _counts[name] for name, total in _sums.items()}
    _sums.clear()
    _counts.clear()
    return out


def pending(prefix: str = "") -> dict[str, Union[float, torch.Tensor]]:
    """The running sums of the names starting with `prefix` since the last collect() (no host sync).

    A sum is non-finite exactly when a non-finite value was reported (the divergence watchdog).
    """
    return {name: total for name, total in _sums.items() if name.startswith(prefix)}


def set_enabled(flag: bool) -> None:
    """Turn reporting off (e.g. in sampling or evaluation code paths that reuse training code)."""
    global _enabled
    _enabled = flag


@contextlib.contextmanager
def isolated() -> Iterator[tuple[dict[str, Union[float, torch.Tensor]], dict[str, int]]]:
    """Reports made inside go to fresh (sums, counts), yielded; the running ones are left untouched.

    A captured CUDA graph step (train/graphs.py) keeps what its capture reported: tensors that each
    replay overwrites, merged into the running sums after every replay with `merge`.
    """
    global _sums, _counts
    outer = (_sums, _counts)
    _sums, _counts = {}, {}
    try:
        yield _sums, _counts
    finally:
        _sums, _counts = outer


def merge(sums: dict[str, Union[float, torch.Tensor]], counts: dict[str, int]) -> None:
    """Add sums and counts (from `isolated`) to the running ones; tensors are copied, not aliased."""
    if not _enabled:
        return
    for name, value in sums.items():
        if isinstance(value, torch.Tensor):
            value = value.clone()
        prev = _sums.get(name)
        _sums[name] = value if prev is None else prev + value
        _counts[name] = _counts.get(name, 0) + counts[name]

