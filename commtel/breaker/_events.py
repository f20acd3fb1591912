"""Events a circuit breaker emits (frozen, slotted, past tense).

``CircuitCallRecorded`` carries only labels: each breaker builds one per result once and
emits the same object on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = [
    "CircuitBackendFailed",
    "CircuitBreakerCreated",
    "CircuitCallRecorded",
    "CircuitRejected",
    "CircuitStateChanged",
]


@dataclass(frozen=True, slots=True)
class CircuitBreakerCreated(Event):
    """A breaker was built; telemetry exposes its call and transition series at 0 from now on.

    Attributes:
        breaker: The breaker's name.
        backend: Where its state is shared (``"redis"``), ``None`` when it lives in this process.

    .. versionadded:: 0.1.0
    """

    breaker: str
    backend: str | None


@dataclass(frozen=True, slots=True)
class CircuitStateChanged(Event):
    """A breaker moved from one state to another (or reports its first state).

    Attributes:
        breaker: The breaker's name.
        from_state: ``"closed"``, ``"open"``, ``"half_open"``, or ``None`` for a new breaker.
        to_state: The state now.
        reason: Why (``"5 consecutive failures"``, ``"probe failed"``, ``"health check passed"`` …).

    .. versionadded:: 0.1.0
    """

    breaker: str
    from_state: str | None
    to_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class CircuitCallRecorded(Event):
    """A call through a breaker finished; *result* is ``success``, ``failure`` or ``slow``.

    .. versionadded:: 0.1.0
    """

    breaker: str
    result: str


@dataclass(frozen=True, slots=True)
class CircuitRejected(Event):
    """A breaker rejected a call without running it (it raised :class:`~commtel.CircuitOpenError`).

    .. versionadded:: 0.1.0
    """

    breaker: str
    state: str
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class CircuitBackendFailed(Event):
    """The shared-state backend failed; the breaker decided by *fallback* instead.

    Attributes:
        breaker: The breaker's name.
        backend: ``"redis"``.
        operation: ``"admit"``, ``"record"``, ``"health"`` or ``"read"``.
        fallback: ``"local"`` (this process's state) or ``"reject"`` (failed closed).

    .. versionadded:: 0.1.0
    """

    breaker: str
    backend: str
    operation: str
    fallback: str
