"""Telemetry: tracing set-up, the metric contract, exposition, JSON logging, operation tracking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from .._redaction import (
        REDACTED,
        add_sensitive_query_params,
        redact_text,
        redact_url,
        register_secret,
        unregister_secret,
    )
    from ._export import JSONLinesSpanExporter, RedactingSpanExporter
    from ._exposition import make_asgi_app, make_wsgi_app, metrics_registry, start_http_server
    from ._listener import TelemetryListener
    from ._logging import BoundLogger, JSONFormatter, TextFormatter, configure_logging, get_logger, log_context
    from ._metrics import CONTRACT, SPECS, Metrics, MetricSpec, get_metrics, use_registry
    from ._multiprocess import mark_process_dead
    from ._operations import Operation, OperationCompleted, OperationTracker
    from ._tracing import (
        CORRELATION_ATTRIBUTE,
        TelemetryConfig,
        configure,
        get_tracer,
        shutdown,
        start_span,
    )


__all__ = [
    "CONTRACT",
    "CORRELATION_ATTRIBUTE",
    "REDACTED",
    "SPECS",
    "BoundLogger",
    "JSONFormatter",
    "JSONLinesSpanExporter",
    "MetricSpec",
    "Metrics",
    "Operation",
    "OperationCompleted",
    "OperationTracker",
    "RedactingSpanExporter",
    "TelemetryConfig",
    "TelemetryListener",
    "TextFormatter",
    "add_sensitive_query_params",
    "configure",
    "configure_logging",
    "get_logger",
    "get_metrics",
    "get_tracer",
    "log_context",
    "make_asgi_app",
    "make_wsgi_app",
    "mark_process_dead",
    "metrics_registry",
    "redact_text",
    "redact_url",
    "register_secret",
    "shutdown",
    "start_http_server",
    "start_span",
    "unregister_secret",
    "use_registry",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            ".._redaction": (
                "REDACTED",
                "add_sensitive_query_params",
                "redact_text",
                "redact_url",
                "register_secret",
                "unregister_secret",
            ),
            "._export": ("JSONLinesSpanExporter", "RedactingSpanExporter"),
            "._exposition": ("make_asgi_app", "make_wsgi_app", "metrics_registry", "start_http_server"),
            "._listener": ("TelemetryListener",),
            "._logging": (
                "BoundLogger",
                "JSONFormatter",
                "TextFormatter",
                "configure_logging",
                "get_logger",
                "log_context",
            ),
            "._metrics": ("CONTRACT", "SPECS", "MetricSpec", "Metrics", "get_metrics", "use_registry"),
            "._multiprocess": ("mark_process_dead",),
            "._operations": ("Operation", "OperationCompleted", "OperationTracker"),
            "._tracing": (
                "CORRELATION_ATTRIBUTE",
                "TelemetryConfig",
                "configure",
                "get_tracer",
                "shutdown",
                "start_span",
            ),
        },
    )
