"""Errors that mean "the user asked for something that cannot be done" (CLI exit code 2)."""

from __future__ import annotations

import difflib
from typing import Iterable


class GanforgeError(ValueError):
    """Bad input from the user: the CLI prints the message on one line and exits with 2."""


class DivergedError(GanforgeError):
    """Training kept producing NaN/inf after the watchdog's rollbacks: the CLI exits with 3."""

    exit_code = 3


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> GanforgeError:
    """The error for a name that is not registered, listing the valid ones."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return GanforgeError(f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}")
