"""Timeouts per attempt and in total: async calls are cancelled, sync calls see their deadline.

The innermost deadline is published in a context variable (:func:`remaining`), so retry
loops, instrumented HTTP clients and your own sync code can stop in time.
"""

from __future__ import annotations

from ._core import Deadline
from ._errors import TimeoutExceeded
from ._events import TimeoutCreated, TimeoutExpired
from ._timeout import Timeout, current_deadline, remaining


__all__ = [
    "Deadline",
    "Timeout",
    "TimeoutCreated",
    "TimeoutExceeded",
    "TimeoutExpired",
    "current_deadline",
    "remaining",
]
