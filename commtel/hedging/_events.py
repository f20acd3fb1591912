"""Events a hedge emits (frozen, slotted, past tense).

``HedgeCallFinished`` carries only labels: a hedge builds one per result once and emits the
same object on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = ["HedgeCallFinished", "HedgeCreated", "HedgeDenied", "HedgeLaunched"]


@dataclass(frozen=True, slots=True)
class HedgeCreated(Event):
    """A hedge was built; telemetry exposes its series at 0 from now on.

    .. versionadded:: 0.1.0
    """

    hedge: str


@dataclass(frozen=True, slots=True)
class HedgeLaunched(Event):
    """A hedged attempt started while earlier ones were still running (or had failed).

    Attributes:
        hedge: The hedge's name.
        attempt: 1 for the first hedged attempt, 2 for the next …
        delay_s: How long the call had run when it started.
        reason: ``"delay"`` (the earlier attempt was slow) or ``"failure"`` (it failed).

    .. versionadded:: 0.1.0
    """

    hedge: str
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class HedgeDenied(Event):
    """The retry budget refused a hedged attempt; the call goes on with the attempts it has.

    .. versionadded:: 0.1.0
    """

    hedge: str
    budget: str


@dataclass(frozen=True, slots=True)
class HedgeCallFinished(Event):
    """A call through a hedge ended; *result* is ``"primary"``, ``"hedge"`` (a hedged attempt answered) or ``"failed"``.

    .. versionadded:: 0.1.0
    """

    hedge: str
    result: str
