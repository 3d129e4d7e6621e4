"""Query parameters of the explorer's requests, checked: a bad value is a 400 with one line saying why."""

from __future__ import annotations

import math
from typing import Optional, Sequence
from urllib.parse import parse_qs

from .paths import HttpError

MAX_FIELDS = 64


def parse_query(query: str) -> dict[str, str]:
    """{name: value} of a query string (a repeated name: its last value)."""
    try:
        pairs = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except (ValueError, UnicodeDecodeError) as e:
        raise HttpError(400, f"bad query string ({e})") from None
    return {k: v[-1] for k, v in pairs.items()}


def int_param(q: dict[str, str], name: str, default: Optional[int], lo: int, hi: int) -> Optional[int]:
    """An integer in [lo, hi]; `default` when absent or empty."""
    text = q.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise HttpError(400, f"{name} must be an integer, got {_show(text)}") from None
    if not lo <= value <= hi:
        raise HttpError(400, f"{name} must be between {lo} and {hi}, got {value}")
    return value


def float_param(q: dict[str, str], name: str, default: Optional[float], lo: float, hi: float) -> Optional[float]:
    """A finite number in [lo, hi]; `default` when absent or empty."""
    text = q.get(name, "").strip()
    if not text:
        return default
    return _float(text, name, lo, hi)


def floats_param(q: dict[str, str], name: str, lo: float, hi: float) -> Optional[list[float]]:
    """A comma-separated list of finite numbers in [lo, hi]; None when absent or empty."""
    text = q.get(name, "").strip()
    if not text:
        return None
    items = text.split(",")
    if len(items) > MAX_FIELDS:
        raise HttpError(400, f"{name}: at most {MAX_FIELDS} values, got {len(items)}")
    return [_float(t.strip(), name, lo, hi) for t in items]


def choice_param(q: dict[str, str], name: str, default: str, choices: Sequence[str]) -> str:
    """One of `choices`; `default` when absent or empty."""
    value = q.get(name, "").strip() or default
    if value not in choices:
        raise HttpError(400, f"{name} must be one of {', '.join(choices)}, got {_show(value)}")
    return value


def capped(q: dict[str, str], name: str, default: int, limit: int, notes: list[str]) -> int:
    """A positive integer, lowered to `limit` if larger (and `notes` says so)."""
    value = int_param(q, name, default, 1, 2**63 - 1)
    assert value is not None
    if value > limit:
        notes.append(f"{name} capped at {limit} (asked for {value})")
        return limit
    return value


def _float(text: str, name: str, lo: float, hi: float) -> float:
    """text as a finite number in [lo, hi], else a 400 naming the parameter."""
    try:
        value = float(text)
    except ValueError:
        raise HttpError(400, f"{name} must be a number, got {_show(text)}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise HttpError(400, f"{name} must be between {lo:g} and {hi:g}, got {_show(text)}")
    return value


def _show(text: str, limit: int = 40) -> str:
    """The value as the message quotes it (shortened)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
