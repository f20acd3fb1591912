"""commtel: resilience + observability for code that talks to rate-limited, flaky APIs.

Policies (rate limiter, retry, circuit breaker, OAuth, trackers) decide; the
telemetry layer observes them through typed events and turns those into spans,
Prometheus metrics and JSON logs.
"""

from __future__ import annotations

import functools

from typing import Any

from ._events import Event, Listener, get_listeners, set_listeners
from ._exceptions import (
    AuthorizationError,
    BackendError,
    CircuitOpenError,
    CommtelError,
    ConfigurationError,
    OAuthError,
    RateLimitError,
    RateLimitExceeded,
    RetryBudgetExhausted,
    RetryExhausted,
    StateTransitionError,
)
from .instrumentation import Guard, Policies, Policy, instrument, uninstrument
from .policies import (
    CircuitBreaker,
    CircuitCallRecorded,
    CircuitRejected,
    CircuitStateChanged,
    ErrorTracker,
    RetriesExhausted,
    RetryBudget,
    RetryBudgetDenied,
    RetryCallFinished,
    RetryConfig,
    RetryPolicy,
    RetryScheduled,
    async_retry,
    get_retry_stats_detailed,
    get_retry_stats_summary,
    retry,
    retry_with_backoff,
    retry_with_rate_limit,
    retrying,
)
from .telemetry import (
    ContextExecutor,
    MetricsCollector,
    OperationTracker,
    PlatformContext,
    configure,
    configure_logging,
    correlation_context,
    get_correlation_id,
    get_logger,
    get_platform_context,
    inject_headers,
    platform_context,
    register_secret,
    run_in_context,
    set_correlation_id,
    shutdown,
    start_http_server,
)


__all__ = [
    "AuthorizationError",
    "BackendError",
    "CircuitBreaker",
    "CircuitCallRecorded",
    "CircuitOpenError",
    "CircuitRejected",
    "CircuitStateChanged",
    "CommtelError",
    "ConfigurationError",
    "ContextExecutor",
    "ErrorTracker",
    "Event",
    "Guard",
    "Listener",
    "MetricsCollector",
    "OAuthError",
    "OperationTracker",
    "PlatformContext",
    "Policies",
    "Policy",
    "RateLimitError",
    "RateLimitExceeded",
    "RetriesExhausted",
    "RetryBudget",
    "RetryBudgetDenied",
    "RetryBudgetExhausted",
    "RetryCallFinished",
    "RetryConfig",
    "RetryExhausted",
    "RetryPolicy",
    "RetryScheduled",
    "StateTransitionError",
    "async_retry",
    "configure",
    "configure_logging",
    "correlation_context",
    "get_correlation_id",
    "get_listeners",
    "get_logger",
    "get_platform_context",
    "get_retry_stats_detailed",
    "get_retry_stats_summary",
    "inject_headers",
    "instrument",
    "platform_context",
    "register_secret",
    "retry",
    "retry_with_backoff",
    "retry_with_rate_limit",
    "retrying",
    "run_in_context",
    "set_correlation_id",
    "set_listeners",
    "shutdown",
    "start_http_server",
    "uninstrument",
]


@functools.cache
def _version() -> str:
    from importlib.metadata import version

    return version("commtel")


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
