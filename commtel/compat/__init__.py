"""The APIs of the older utility packages commtel replaces, under their old names.

Code written against them ports by changing the import to ``from commtel.compat import ...``.
Every name here is built on commtel's own components (the limiter, retry policy,
trackers, OAuth client, logging and telemetry), so ported code gets commtel's metrics,
spans and log lines. New code should use the main API; ``docs/compat.md`` maps each
name here to it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from .._exceptions import RateLimitExceeded, RetryExhausted
    from ..breaker import CircuitBreaker
    from ..context import PlatformContextError, set_correlation_id
    from ..messages import ConversationTracker, FileLock, MessageHeaders, MessageState
    from ..ratelimit import RateLimitConfig, extract_endpoint_from_url
    from ..retries import get_retry_stats_detailed, get_retry_stats_summary
    from ..telemetry import configure_logging
    from ._auth import OAuthManager, TokenInfo, TokenManager
    from ._context import PlatformContext, PlatformContextManager
    from ._errors import ErrorTracker, RateLimitError
    from ._logging import (
        ContextLogger,
        LoggingContext,
        MetricsCollector,
        StructuredFormatter,
        get_logger,
        log_operation_metrics,
        setup_logging,
    )
    from ._progress import ProgressStatus, ProgressTracker
    from ._ratelimit import GlobalRateLimiter, RateLimiter, get_rate_limiter, rate_limited
    from ._retry import RetryConfig, async_retry, retry, retry_with_backoff, retry_with_rate_limit


__all__ = [
    "CircuitBreaker",
    "ContextLogger",
    "ConversationTracker",
    "ErrorTracker",
    "FileLock",
    "GlobalRateLimiter",
    "LoggingContext",
    "MessageHeaders",
    "MessageState",
    "MetricsCollector",
    "OAuthManager",
    "PlatformContext",
    "PlatformContextError",
    "PlatformContextManager",
    "ProgressStatus",
    "ProgressTracker",
    "RateLimitConfig",
    "RateLimitError",
    "RateLimitExceeded",
    "RateLimiter",
    "RetryConfig",
    "RetryExhausted",
    "StructuredFormatter",
    "TokenInfo",
    "TokenManager",
    "async_retry",
    "configure_logging",
    "extract_endpoint_from_url",
    "get_logger",
    "get_rate_limiter",
    "get_retry_stats_detailed",
    "get_retry_stats_summary",
    "log_operation_metrics",
    "rate_limited",
    "retry",
    "retry_with_backoff",
    "retry_with_rate_limit",
    "set_correlation_id",
    "setup_logging",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            ".._exceptions": ("RateLimitExceeded", "RetryExhausted"),
            "..breaker": ("CircuitBreaker",),
            "..context": ("PlatformContextError", "set_correlation_id"),
            "..messages": ("ConversationTracker", "FileLock", "MessageHeaders", "MessageState"),
            "..ratelimit": ("RateLimitConfig", "extract_endpoint_from_url"),
            "..retries": ("get_retry_stats_detailed", "get_retry_stats_summary"),
            "..telemetry": ("configure_logging",),
            "._auth": ("OAuthManager", "TokenInfo", "TokenManager"),
            "._context": ("PlatformContext", "PlatformContextManager"),
            "._errors": ("ErrorTracker", "RateLimitError"),
            "._logging": (
                "ContextLogger",
                "LoggingContext",
                "MetricsCollector",
                "StructuredFormatter",
                "get_logger",
                "log_operation_metrics",
                "setup_logging",
            ),
            "._progress": ("ProgressStatus", "ProgressTracker"),
            "._ratelimit": ("GlobalRateLimiter", "RateLimiter", "get_rate_limiter", "rate_limited"),
            "._retry": ("RetryConfig", "async_retry", "retry", "retry_with_backoff", "retry_with_rate_limit"),
        },
    )
