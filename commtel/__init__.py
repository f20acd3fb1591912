"""commtel: resilience + observability for code that talks to rate-limited, flaky APIs.

Components (rate limiter, retry, circuit breaker, OAuth client, trackers) decide; the
telemetry layer observes them through typed events (:mod:`commtel.events`) and turns
those into spans, Prometheus metrics and JSON logs. Errors live in :mod:`commtel.errors`,
the older utility packages' spellings in :mod:`commtel.compat`.
"""

from __future__ import annotations

import functools

from typing import Any

from ._exceptions import (
    BackendError,
    CircuitOpenError,
    CommtelError,
    ConfigurationError,
    OAuthError,
    RateLimitExceeded,
    RetryExhausted,
)
from ._redaction import register_secret
from .breaker import CircuitBreaker
from .context import (
    ContextExecutor,
    PlatformContext,
    correlation_context,
    get_correlation_id,
    get_platform_context,
    inject_headers,
    platform_context,
)
from .instrumentation import Guard, instrument, uninstrument
from .messages import ConversationTracker, FileLock, MessageHeaders, MessageState
from .oauth import AsyncOAuthClient, OAuthClient, Token
from .progress import ErrorTracker, ProgressTracker
from .ratelimit import GlobalRateLimiter, RateLimitConfig, RateLimiter, rate_limited
from .retries import RetryBudget, RetryConfig, RetryPolicy, retry, retrying
from .telemetry import (
    OperationTracker,
    configure,
    configure_logging,
    get_logger,
    shutdown,
    start_http_server,
)


__all__ = [
    "AsyncOAuthClient",
    "BackendError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CommtelError",
    "ConfigurationError",
    "ContextExecutor",
    "ConversationTracker",
    "ErrorTracker",
    "FileLock",
    "GlobalRateLimiter",
    "Guard",
    "MessageHeaders",
    "MessageState",
    "OAuthClient",
    "OAuthError",
    "OperationTracker",
    "PlatformContext",
    "ProgressTracker",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimiter",
    "RetryBudget",
    "RetryConfig",
    "RetryExhausted",
    "RetryPolicy",
    "Token",
    "configure",
    "configure_logging",
    "correlation_context",
    "get_correlation_id",
    "get_logger",
    "get_platform_context",
    "inject_headers",
    "instrument",
    "platform_context",
    "rate_limited",
    "register_secret",
    "retry",
    "retrying",
    "shutdown",
    "start_http_server",
    "uninstrument",
]


@functools.cache
def _version() -> str:
    from importlib.metadata import version

    return version("commtel")


_SUBMODULES = frozenset({"compat", "errors", "events", "testing"})


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
