"""commtel: resilience + observability for code that talks to rate-limited, flaky APIs.

Components (rate limiter, retry, circuit breaker, OAuth client, trackers) decide; the
telemetry layer observes them through typed events (:mod:`commtel.events`) and turns
those into spans, Prometheus metrics and JSON logs. Errors live in :mod:`commtel.errors`,
the older utility packages' spellings in :mod:`commtel.compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _defaults
from ._lazy import exports
from ._version import version as _version


if TYPE_CHECKING:
    from . import (
        backends,
        breaker,
        compat,
        context,
        errors,
        events,
        instrumentation,
        messages,
        oauth,
        progress,
        ratelimit,
        retries,
        simulator,
        telemetry,
        testing,
    )
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

if TYPE_CHECKING:
    __version__: str


def _telemetry_listeners() -> tuple[Any, ...]:
    """The default listeners: the telemetry listener, every component's handlers loaded now."""
    from ._telemetry_handlers import get_telemetry_listener

    return (get_telemetry_listener(),)


_defaults.listeners = _telemetry_listeners


if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    _getattr, __dir__ = exports(
        __name__,
        globals(),
        {
            "._exceptions": (
                "BackendError",
                "CircuitOpenError",
                "CommtelError",
                "ConfigurationError",
                "OAuthError",
                "RateLimitExceeded",
                "RetryExhausted",
            ),
            "._redaction": ("register_secret",),
            ".breaker": ("CircuitBreaker",),
            ".context": (
                "ContextExecutor",
                "PlatformContext",
                "correlation_context",
                "get_correlation_id",
                "get_platform_context",
                "inject_headers",
                "platform_context",
            ),
            ".instrumentation": ("Guard", "instrument", "uninstrument"),
            ".messages": ("ConversationTracker", "FileLock", "MessageHeaders", "MessageState"),
            ".oauth": ("AsyncOAuthClient", "OAuthClient", "Token"),
            ".progress": ("ErrorTracker", "ProgressTracker"),
            ".ratelimit": ("GlobalRateLimiter", "RateLimitConfig", "RateLimiter", "rate_limited"),
            ".retries": ("RetryBudget", "RetryConfig", "RetryPolicy", "retry", "retrying"),
            ".telemetry": (
                "OperationTracker",
                "configure",
                "configure_logging",
                "get_logger",
                "shutdown",
                "start_http_server",
            ),
        },
        submodules=(
            "backends",
            "breaker",
            "compat",
            "context",
            "errors",
            "events",
            "instrumentation",
            "messages",
            "oauth",
            "progress",
            "ratelimit",
            "retries",
            "simulator",
            "telemetry",
            "testing",
        ),
    )

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            return _version()
        return _getattr(name)
