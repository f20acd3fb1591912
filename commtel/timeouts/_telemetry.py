"""Telemetry handlers for timeout events: ``commtel_timeouts_total``, a span event, a log line."""

from __future__ import annotations

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import TimeoutCreated, TimeoutExpired


_log = get_logger("commtel.timeouts")


@handles(TimeoutCreated)
def _on_created(event: TimeoutCreated) -> None:
    metrics = get_metrics()
    metrics.child(metrics.timeouts, event.timeout, event.scope)


@handles(TimeoutExpired)
def _on_expired(event: TimeoutExpired) -> None:
    metrics = get_metrics()
    metrics.child(metrics.timeouts, event.timeout, event.scope).inc()
    if span := recording_span():
        span.add_event(
            "commtel.timeout.expired",
            {
                "commtel.timeout.name": event.timeout,
                "commtel.timeout.scope": event.scope,
                "commtel.timeout.timeout_s": event.timeout_s,
            },
        )
    _log.info(
        "%s timeout %s of %gs expired",
        event.scope,
        event.timeout,
        event.timeout_s,
        timeout=event.timeout,
        scope=event.scope,
        timeout_s=event.timeout_s,
    )
