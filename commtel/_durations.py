"""Durations given by users: float seconds or ``timedelta``, validated once at construction."""

from __future__ import annotations

import math

from datetime import timedelta

from ._exceptions import ConfigurationError


__all__ = ["seconds"]


def seconds(value: float | timedelta | None, name: str) -> float | None:
    """*value* as float seconds (``timedelta`` accepted); negative or NaN is a configuration error."""
    if value is None:
        return None
    out = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(out) or out < 0:
        msg = f"{name} must be >= 0 seconds, got {value!r}"
        raise ConfigurationError(msg)
    return out
