"""Retry with exponential backoff and jitter, sync and async, ``Retry-After`` aware.

One sans-I/O core decides (:class:`RetryPolicy`); thin drivers sleep and call. A
shared :class:`RetryBudget` caps retries across callers and processes.
"""

from __future__ import annotations

from ._budget import RetryBudget
from ._config import Jitter, RetryConfig
from ._drivers import Attempt, RetryingBlock
from ._events import RetryCallFinished, RetryDenied, RetryGaveUp, RetryScheduled
from ._policy import RetryOptions, RetryPolicy, retry, retrying
from ._stats import RetryStats, get_retry_stats_detailed, get_retry_stats_summary, reset_retry_stats


__all__ = [
    "Attempt",
    "Jitter",
    "RetryBudget",
    "RetryCallFinished",
    "RetryConfig",
    "RetryDenied",
    "RetryGaveUp",
    "RetryOptions",
    "RetryPolicy",
    "RetryScheduled",
    "RetryStats",
    "RetryingBlock",
    "get_retry_stats_detailed",
    "get_retry_stats_summary",
    "reset_retry_stats",
    "retry",
    "retrying",
]
