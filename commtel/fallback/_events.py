"""Events a fallback emits (frozen, slotted, past tense)."""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = ["FallbackCreated", "FallbackUsed"]


@dataclass(frozen=True, slots=True)
class FallbackCreated(Event):
    """A fallback was built; telemetry exposes its series at 0 from now on.

    .. versionadded:: 0.1.0
    """

    fallback: str


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """A call failed and the fallback answered instead.

    Attributes:
        fallback: The fallback's name.
        reason: ``"rejected"`` (a breaker, limiter or bulkhead refused the call),
            ``"timeout"``, ``"error"`` or ``"result"`` (a result judged a failure).
        error: The failure itself (``None`` for a failing result); recorded on the span.

    .. versionadded:: 0.1.0
    """

    fallback: str
    reason: str
    error: BaseException | None
