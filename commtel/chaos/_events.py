"""Events a fault injector emits (frozen, slotted, past tense)."""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = ["FaultInjected", "FaultInjectorCreated"]


@dataclass(frozen=True, slots=True)
class FaultInjectorCreated(Event):
    """A fault injector was built; telemetry exposes its series at 0 from now on.

    .. versionadded:: 0.1.0
    """

    injector: str


@dataclass(frozen=True, slots=True)
class FaultInjected(Event):
    """A fault injector injected *fault* (``"latency"``, ``"error"`` or ``"outcome"``) into a call.

    The telemetry listener marks it on the current span (attribute ``commtel.chaos.injected``
    and a ``commtel.chaos.fault`` event), so injected failures are never mistaken for real ones.

    .. versionadded:: 0.1.0
    """

    injector: str
    fault: str
    latency_s: float = 0.0
