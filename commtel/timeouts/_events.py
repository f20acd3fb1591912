"""Events a timeout emits (frozen, slotted, past tense)."""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = ["TimeoutCreated", "TimeoutExpired"]


@dataclass(frozen=True, slots=True)
class TimeoutCreated(Event):
    """A timeout was built; telemetry exposes its series at 0 from now on.

    .. versionadded:: 0.1.0
    """

    timeout: str
    scope: str


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A timeout cut a call or attempt off (it raised :class:`~commtel.errors.TimeoutExceeded`).

    Attributes:
        timeout: The timeout's name.
        scope: ``"attempt"`` or ``"total"``.
        timeout_s: Its length in seconds.

    .. versionadded:: 0.1.0
    """

    timeout: str
    scope: str
    timeout_s: float
