"""Durations given by users: float seconds or ``timedelta``, validated once at construction."""

from __future__ import annotations

from datetime import timedelta

from . import _validation as check


__all__ = ["seconds"]


def seconds(value: float | timedelta | None, name: str) -> float | None:
    """*value* as float seconds (``timedelta`` accepted, ``None`` kept); NaN, infinite or negative is refused."""
    return check.duration(value, name, owner="", optional=True)
