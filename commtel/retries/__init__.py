"""Retry with exponential backoff and jitter, sync and async, ``Retry-After`` aware.

One sans-I/O core decides (:class:`RetryPolicy`); thin drivers sleep and call. A
shared :class:`RetryBudget` caps retries across callers and processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._budget import RetryBudget
    from ._config import Jitter, RetryConfig
    from ._drivers import Attempt, RetryingBlock
    from ._events import RetryBudgetBackendFailed, RetryCallFinished, RetryDenied, RetryGaveUp, RetryScheduled
    from ._policy import RetryOptions, RetryPolicy, retry, retrying
    from ._stats import RetryStats, get_retry_stats_detailed, get_retry_stats_summary, reset_retry_stats


__all__ = [
    "Attempt",
    "Jitter",
    "RetryBudget",
    "RetryBudgetBackendFailed",
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

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._budget": ("RetryBudget",),
            "._config": ("Jitter", "RetryConfig"),
            "._drivers": ("Attempt", "RetryingBlock"),
            "._events": (
                "RetryBudgetBackendFailed",
                "RetryCallFinished",
                "RetryDenied",
                "RetryGaveUp",
                "RetryScheduled",
            ),
            "._policy": ("RetryOptions", "RetryPolicy", "retry", "retrying"),
            "._stats": ("RetryStats", "get_retry_stats_detailed", "get_retry_stats_summary", "reset_retry_stats"),
        },
    )
