"""Events the concurrency limiters emit (frozen, slotted, past tense).

A bulkhead and an adaptive limiter emit the same events (``kind`` tells them apart), so
one family of metrics shows both. ``ConcurrencyAdmitted`` and ``ConcurrencyReleased``
carry only the limiter's name: each limiter builds them once and emits the same objects
on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = [
    "ConcurrencyAdmitted",
    "ConcurrencyLimitChanged",
    "ConcurrencyRejected",
    "ConcurrencyReleased",
    "ConcurrencyWaited",
]


@dataclass(frozen=True, slots=True)
class ConcurrencyAdmitted(Event):
    """A call took a slot (at once, or after waiting).

    .. versionadded:: 0.1.0
    """

    limiter: str


@dataclass(frozen=True, slots=True)
class ConcurrencyReleased(Event):
    """A call gave its slot back.

    .. versionadded:: 0.1.0
    """

    limiter: str


@dataclass(frozen=True, slots=True)
class ConcurrencyWaited(Event):
    """A call waited *waited_s* seconds for a slot, then got one.

    .. versionadded:: 0.1.0
    """

    limiter: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class ConcurrencyRejected(Event):
    """A limiter refused a call (it raised :class:`~commtel.errors.ConcurrencyLimitExceeded`).

    Attributes:
        limiter: The limiter's name.
        kind: ``"bulkhead"`` or ``"adaptive"``.
        limit: The limit of calls in flight.
        waited_s: How long the caller waited before it was refused.
        reason: ``"full"`` (no slot, no wait allowed), ``"queue_full"`` or ``"wait_timeout"``.

    .. versionadded:: 0.1.0
    """

    limiter: str
    kind: str
    limit: int
    waited_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class ConcurrencyLimitChanged(Event):
    """A limiter's limit was set (``from_limit`` is ``None`` when it is created) or moved.

    Attributes:
        limiter: The limiter's name.
        kind: ``"bulkhead"`` or ``"adaptive"``.
        from_limit: The limit before, or ``None`` for a new limiter.
        to_limit: The limit now.
        reason: ``"created"``, or the adaptive limiter's reason: ``"latency"`` (the algorithm
            moved it), ``"probe"`` (lowered for a moment to measure the unloaded latency)
            or ``"probe_done"``.
        rtt_s: The mean latency of the window that decided (0 when none).
        baseline_s: The unloaded latency the limiter compares against (0 when unknown).

    .. versionadded:: 0.1.0
    """

    limiter: str
    kind: str
    from_limit: int | None
    to_limit: int
    reason: str
    rtt_s: float = 0.0
    baseline_s: float = 0.0
