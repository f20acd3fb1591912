"""Correlation id and platform context: who and what a piece of work is for.

Both live in contextvars, so they follow the work through threads
(:class:`ContextExecutor`, :func:`run_in_context`) and asyncio tasks; the
correlation id also travels in W3C baggage and the ``X-Correlation-ID`` header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._correlation import (
        CORRELATION_HEADER,
        ASGICorrelationMiddleware,
        ContextExecutor,
        CorrelationMiddleware,
        correlation_context,
        extract_correlation_id,
        get_correlation_id,
        inject_headers,
        new_correlation_id,
        run_in_context,
        set_correlation_id,
    )
    from ._platform import (
        PlatformContext,
        PlatformContextError,
        PlatformContextManager,
        current_platform,
        filter_by_platform,
        get_platform_context,
        platform_context,
    )


__all__ = [
    "CORRELATION_HEADER",
    "ASGICorrelationMiddleware",
    "ContextExecutor",
    "CorrelationMiddleware",
    "PlatformContext",
    "PlatformContextError",
    "PlatformContextManager",
    "correlation_context",
    "current_platform",
    "extract_correlation_id",
    "filter_by_platform",
    "get_correlation_id",
    "get_platform_context",
    "inject_headers",
    "new_correlation_id",
    "platform_context",
    "run_in_context",
    "set_correlation_id",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._correlation": (
                "CORRELATION_HEADER",
                "ASGICorrelationMiddleware",
                "ContextExecutor",
                "CorrelationMiddleware",
                "correlation_context",
                "extract_correlation_id",
                "get_correlation_id",
                "inject_headers",
                "new_correlation_id",
                "run_in_context",
                "set_correlation_id",
            ),
            "._platform": (
                "PlatformContext",
                "PlatformContextError",
                "PlatformContextManager",
                "current_platform",
                "filter_by_platform",
                "get_platform_context",
                "platform_context",
            ),
        },
    )
