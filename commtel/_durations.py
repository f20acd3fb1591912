"""Durations given by users: float seconds or ``timedelta``, validated once at construction."""

from __future__ import annotations

import math

from datetime import timedelta

from ._exceptions import ConfigurationError


__all__ = ["seconds"]


def seconds(value: float | timedelta | None, name: str) -> float | None:
    """*value* as float seconds (``timedelta`` accepted, ``None`` kept); NaN, infinite, negative or not a number is refused."""
    if value is None:
        return None
    out: object = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(out, bool) and isinstance(out, int | float):
        try:
            out = float(out)
        except OverflowError:  # an int beyond float range
            out = math.inf
        if math.isfinite(out) and out >= 0:
            return out
    msg = f"{name} must be >= 0 seconds (a finite float or timedelta), got {value!r}"
    raise ConfigurationError(msg)
