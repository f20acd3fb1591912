"""Circuit breaker: consecutive-failure or failure-rate tripping, half-open probes, slow calls.

State lives in the process or, shared by a fleet, on Redis.
"""

from __future__ import annotations

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
