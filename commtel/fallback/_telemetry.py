"""Telemetry handlers for fallback events: ``commtel_fallbacks_total``, the failure on the span, a log line."""

from __future__ import annotations

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import FallbackCreated, FallbackUsed


_log = get_logger("commtel.fallback")


@handles(FallbackCreated)
def _on_created(event: FallbackCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.fallbacks, event.fallback)


@handles(FallbackUsed)
def _on_used(event: FallbackUsed) -> None:
    metrics = get_metrics()
    metrics.child(metrics.fallbacks, event.fallback, event.reason).inc()
    error = event.error
    error_type = "" if error is None else type(error).__qualname__
    if span := recording_span():
        if error is not None:
            span.record_exception(error)
        span.add_event(
            "commtel.fallback.used",
            {
                "commtel.fallback.name": event.fallback,
                "commtel.fallback.reason": event.reason,
                "error.type": error_type,
            },
        )
    _log.warning(
        "fallback %s answered a failed call (%s%s)",
        event.fallback,
        event.reason,
        f": {error_type}: {error}" if error is not None else "",
        fallback=event.fallback,
        reason=event.reason,
        error_type=error_type or None,
    )
