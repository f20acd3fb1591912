"""Concurrency limits: a fixed bulkhead, and an adaptive limiter whose limit follows latency.

Both admit at most *limit* calls in flight, let the others wait a bounded time, and refuse
the rest with :class:`~commtel.errors.ConcurrencyLimitExceeded`. The adaptive limiter moves
its limit with the latency it measures (Gradient2, AIMD or Vegas), like Netflix's
concurrency-limits and Envoy's adaptive concurrency filter.
"""

from __future__ import annotations

from ._adaptive import AdaptiveLimiter, Permit
from ._algorithms import AIMD, Gradient2, LimitAlgorithm, Vegas, Window
from ._bulkhead import Bulkhead
from ._errors import ConcurrencyLimitExceeded
from ._events import (
    ConcurrencyAdmitted,
    ConcurrencyLimitChanged,
    ConcurrencyRejected,
    ConcurrencyReleased,
    ConcurrencyWaited,
)


__all__ = [
    "AIMD",
    "AdaptiveLimiter",
    "Bulkhead",
    "ConcurrencyAdmitted",
    "ConcurrencyLimitChanged",
    "ConcurrencyLimitExceeded",
    "ConcurrencyRejected",
    "ConcurrencyReleased",
    "ConcurrencyWaited",
    "Gradient2",
    "LimitAlgorithm",
    "Permit",
    "Vegas",
    "Window",
]
