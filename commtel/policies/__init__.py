"""commtel.policies."""

from __future__ import annotations

from ._breaker import Admission, CircuitBreaker, StateListener
from ._breaker_events import CircuitCallRecorded, CircuitRejected, CircuitStateChanged
from ._budget import RetryBudget
from ._errors import ErrorRecorded, ErrorTracker, TrackedError
from ._retry import (
    RetryOptions,
    RetryPolicy,
    async_retry,
    retry,
    retry_with_backoff,
    retry_with_rate_limit,
    retrying,
)
from ._retry_config import Jitter, RetryConfig
from ._retry_drivers import Attempt, RetryingBlock
from ._retry_events import RetriesExhausted, RetryBudgetDenied, RetryCallFinished, RetryScheduled
from ._retry_stats import (
    RetryStats,
    get_retry_stats_detailed,
    get_retry_stats_summary,
    reset_retry_stats,
)


__all__ = [
    "Admission",
    "Attempt",
    "CircuitBreaker",
    "CircuitCallRecorded",
    "CircuitRejected",
    "CircuitStateChanged",
    "ErrorRecorded",
    "ErrorTracker",
    "Jitter",
    "RetriesExhausted",
    "RetryBudget",
    "RetryBudgetDenied",
    "RetryCallFinished",
    "RetryConfig",
    "RetryOptions",
    "RetryPolicy",
    "RetryScheduled",
    "RetryStats",
    "RetryingBlock",
    "StateListener",
    "TrackedError",
    "async_retry",
    "get_retry_stats_detailed",
    "get_retry_stats_summary",
    "reset_retry_stats",
    "retry",
    "retry_with_backoff",
    "retry_with_rate_limit",
    "retrying",
]
