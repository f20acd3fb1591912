"""Fallback: a value or handler answers a failed call, and the failure is still recorded."""

from __future__ import annotations

from ._events import FallbackCreated, FallbackUsed
from ._fallback import Failure, Fallback


__all__ = ["Failure", "Fallback", "FallbackCreated", "FallbackUsed"]
