"""Telemetry handlers for concurrency-limit events: limit, in-flight and wait metrics, span events, logs."""

from __future__ import annotations

from collections.abc import Callable

from ..telemetry._listener import binds, handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import (
    ConcurrencyAdmitted,
    ConcurrencyLimitChanged,
    ConcurrencyRejected,
    ConcurrencyReleased,
    ConcurrencyWaited,
)


_log = get_logger("commtel.concurrency")


@binds(ConcurrencyAdmitted)
def _bind_admitted(event: ConcurrencyAdmitted) -> Callable[[], None]:
    metrics = get_metrics()
    admitted = metrics.child(metrics.concurrency_decisions, event.limiter, "admitted").inc
    entered = metrics.child(metrics.concurrency_in_flight, event.limiter).inc

    def deliver() -> None:
        admitted()
        entered()

    return deliver


@handles(ConcurrencyAdmitted)
def _on_admitted(event: ConcurrencyAdmitted) -> None:
    _bind_admitted(event)()


@binds(ConcurrencyReleased)
def _bind_released(event: ConcurrencyReleased) -> Callable[[], None]:
    metrics = get_metrics()
    return metrics.child(metrics.concurrency_in_flight, event.limiter).dec


@handles(ConcurrencyReleased)
def _on_released(event: ConcurrencyReleased) -> None:
    _bind_released(event)()


@handles(ConcurrencyWaited)
def _on_waited(event: ConcurrencyWaited) -> None:
    metrics = get_metrics()
    metrics.observe(metrics.concurrency_wait, event.waited_s, event.limiter)


@handles(ConcurrencyRejected)
def _on_rejected(event: ConcurrencyRejected) -> None:
    metrics = get_metrics()
    metrics.child(metrics.concurrency_decisions, event.limiter, "rejected").inc()
    if event.waited_s > 0:
        metrics.observe(metrics.concurrency_wait, event.waited_s, event.limiter)
    if span := recording_span():
        span.add_event(
            "commtel.concurrency.rejected",
            {
                "commtel.concurrency.limiter": event.limiter,
                "commtel.concurrency.kind": event.kind,
                "commtel.concurrency.limit": event.limit,
                "commtel.concurrency.waited_s": event.waited_s,
                "commtel.concurrency.reason": event.reason,
            },
        )


@handles(ConcurrencyLimitChanged)
def _on_limit_changed(event: ConcurrencyLimitChanged) -> None:
    metrics = get_metrics()
    limiter = event.limiter
    metrics.child(metrics.concurrency_limit, limiter, event.kind).set(event.to_limit)
    if event.from_limit is None:  # a new limiter: every series it may write starts at 0
        metrics.child(metrics.concurrency_in_flight, limiter)
        metrics.zero(metrics.concurrency_decisions, limiter)
        metrics.zero(metrics.concurrency_wait, limiter)
        if event.kind == "adaptive":
            metrics.zero(metrics.concurrency_latency, limiter)
        return
    if event.rtt_s > 0:
        metrics.child(metrics.concurrency_latency, limiter, "window").set(event.rtt_s)
    if event.baseline_s > 0:
        metrics.child(metrics.concurrency_latency, limiter, "baseline").set(event.baseline_s)
    if span := recording_span():
        span.add_event(
            "commtel.concurrency.limit_changed",
            {
                "commtel.concurrency.limiter": limiter,
                "commtel.concurrency.from_limit": event.from_limit,
                "commtel.concurrency.to_limit": event.to_limit,
                "commtel.concurrency.reason": event.reason,
                "commtel.concurrency.rtt_s": event.rtt_s,
                "commtel.concurrency.baseline_s": event.baseline_s,
            },
        )
    _log.debug(
        "adaptive limiter %s: limit %d -> %d (%s; window latency %.4fs, baseline %.4fs)",
        limiter,
        event.from_limit,
        event.to_limit,
        event.reason,
        event.rtt_s,
        event.baseline_s,
        limiter=limiter,
        from_limit=event.from_limit,
        to_limit=event.to_limit,
        reason=event.reason,
    )
