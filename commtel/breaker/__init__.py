"""Circuit breaker: consecutive-failure or failure-rate tripping, half-open probes, slow calls.

State lives in the process or, shared by a fleet, on Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._breaker import Admission, CircuitBreaker, StateListener
    from ._events import CircuitBackendFailed, CircuitCallRecorded, CircuitRejected, CircuitStateChanged


__all__ = [
    "Admission",
    "CircuitBackendFailed",
    "CircuitBreaker",
    "CircuitCallRecorded",
    "CircuitRejected",
    "CircuitStateChanged",
    "StateListener",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._breaker": ("Admission", "CircuitBreaker", "StateListener"),
            "._events": ("CircuitBackendFailed", "CircuitCallRecorded", "CircuitRejected", "CircuitStateChanged"),
        },
    )
