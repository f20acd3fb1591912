"""Telemetry: tracing set-up, the metric contract, JSON logging, correlation context."""

from __future__ import annotations

from .._redaction import REDACTED, register_secret
from ._context import (
    CORRELATION_HEADER,
    ASGICorrelationMiddleware,
    ContextExecutor,
    CorrelationMiddleware,
    PlatformContext,
    correlation_context,
    current_platform,
    extract_correlation_id,
    get_correlation_id,
    get_platform_context,
    inject_headers,
    new_correlation_id,
    platform_context,
    run_in_context,
    set_correlation_id,
)
from ._exposition import make_asgi_app, make_wsgi_app, metrics_registry, start_http_server
from ._listener import TelemetryListener, get_telemetry_listener
from ._logging import BoundLogger, JSONFormatter, TextFormatter, configure_logging, get_logger
from ._metrics import CONTRACT, Metrics, get_metrics, use_registry
from ._operations import MetricsCollector, Operation, OperationCompleted, OperationTracker
from ._tracing import (
    CORRELATION_ATTRIBUTE,
    JSONLinesSpanExporter,
    RedactingSpanExporter,
    TelemetryConfig,
    configure,
    get_tracer,
    shutdown,
    start_span,
)


__all__ = [
    "CONTRACT",
    "CORRELATION_ATTRIBUTE",
    "CORRELATION_HEADER",
    "REDACTED",
    "ASGICorrelationMiddleware",
    "BoundLogger",
    "ContextExecutor",
    "CorrelationMiddleware",
    "JSONFormatter",
    "JSONLinesSpanExporter",
    "Metrics",
    "MetricsCollector",
    "Operation",
    "OperationCompleted",
    "OperationTracker",
    "PlatformContext",
    "RedactingSpanExporter",
    "TelemetryConfig",
    "TelemetryListener",
    "TextFormatter",
    "configure",
    "configure_logging",
    "correlation_context",
    "current_platform",
    "extract_correlation_id",
    "get_correlation_id",
    "get_logger",
    "get_metrics",
    "get_platform_context",
    "get_telemetry_listener",
    "get_tracer",
    "inject_headers",
    "make_asgi_app",
    "make_wsgi_app",
    "metrics_registry",
    "new_correlation_id",
    "platform_context",
    "register_secret",
    "run_in_context",
    "set_correlation_id",
    "shutdown",
    "start_http_server",
    "start_span",
    "use_registry",
]
