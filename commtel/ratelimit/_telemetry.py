"""Telemetry handlers for rate-limiter events: decision and wait metrics, backend errors, span events."""

from __future__ import annotations

import functools

from collections.abc import Callable

from ..telemetry._listener import binds, handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import (
    RateLimitBackendFailed,
    RateLimitDecided,
    RateLimiterCreated,
    RateLimitWaited,
    ServerThrottled,
)


_log = get_logger("commtel.ratelimit")


@handles(RateLimiterCreated)
def _on_created(event: RateLimiterCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.ratelimit_decisions, event.limiter, event.platform)
    metrics.zero(metrics.ratelimit_wait, event.limiter, event.platform)
    if event.backend != "memory":
        metrics.zero(metrics.ratelimit_backend_errors, event.limiter, event.backend)


@binds(RateLimitDecided)
def _bind_decided(event: RateLimitDecided) -> Callable[[], None]:
    # A limiter binds its common admitted decision: that is only a counter increment.
    if not event.allowed:
        return functools.partial(_on_decided, event)
    metrics = get_metrics()
    # A platform label seen for the first time gets its throttled series at 0 too.
    metrics.zero(metrics.ratelimit_decisions, event.limiter, event.platform)
    return metrics.child(metrics.ratelimit_decisions, event.limiter, event.platform, "allowed").inc


@handles(RateLimitDecided)
def _on_decided(event: RateLimitDecided) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.ratelimit_decisions, event.limiter, event.platform)
    decision = "allowed" if event.allowed else "throttled"
    metrics.child(metrics.ratelimit_decisions, event.limiter, event.platform, decision).inc()
    if event.allowed:
        return
    if span := recording_span():
        span.add_event(
            "commtel.ratelimit.throttled",
            {
                "commtel.ratelimit.limiter": event.limiter,
                "commtel.ratelimit.platform": event.platform,
                "commtel.ratelimit.cost": event.cost,
                "commtel.ratelimit.retry_after_s": event.retry_after_s,
            },
        )


@handles(RateLimitWaited)
def _on_waited(event: RateLimitWaited) -> None:
    metrics = get_metrics()
    metrics.observe(metrics.ratelimit_wait, event.waited_s, event.limiter, event.platform)


@handles(ServerThrottled)
def _on_server_throttled(event: ServerThrottled) -> None:
    if span := recording_span():
        span.add_event(
            "commtel.ratelimit.server_throttled",
            {
                "commtel.ratelimit.limiter": event.limiter,
                "commtel.ratelimit.platform": event.platform,
                "http.response.status_code": event.status,
                "commtel.ratelimit.delay_s": event.delay_s,
                "commtel.ratelimit.source": event.source,
                "commtel.ratelimit.clamped": event.clamped,
            },
        )
    _log.info(
        "server throttled limiter %s for %.3fs (%s, status %d)",
        event.limiter,
        event.delay_s,
        event.source,
        event.status,
        limiter=event.limiter,
        platform=event.platform,
        delay_s=event.delay_s,
        source=event.source,
        status=event.status,
        clamped=event.clamped,
    )


@handles(RateLimitBackendFailed)
def _on_backend_failed(event: RateLimitBackendFailed) -> None:
    metrics = get_metrics()
    metrics.child(metrics.ratelimit_backend_errors, event.limiter, event.backend).inc()
    if span := recording_span():
        span.add_event(
            "commtel.ratelimit.backend_failed",
            {
                "commtel.ratelimit.limiter": event.limiter,
                "commtel.ratelimit.backend": event.backend,
                "error.type": event.error,
                "commtel.ratelimit.fail_open": event.fail_open,
            },
        )
