"""Telemetry handlers for hedging events: calls by answering attempt, hedges launched or denied, span events."""

from __future__ import annotations

from collections.abc import Callable

from ..telemetry._listener import binds, handles
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import HedgeCallFinished, HedgeCreated, HedgeDenied, HedgeLaunched


@handles(HedgeCreated)
def _on_created(event: HedgeCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.hedge_calls, event.hedge)
    metrics.zero(metrics.hedges, event.hedge)


@binds(HedgeCallFinished)
def _bind_finished(event: HedgeCallFinished) -> Callable[[], None]:
    metrics = get_metrics()
    return metrics.child(metrics.hedge_calls, event.hedge, event.result).inc


@handles(HedgeCallFinished)
def _on_finished(event: HedgeCallFinished) -> None:
    _bind_finished(event)()


@handles(HedgeLaunched)
def _on_launched(event: HedgeLaunched) -> None:
    metrics = get_metrics()
    metrics.child(metrics.hedges, event.hedge, "launched").inc()
    if span := recording_span():
        span.add_event(
            "commtel.hedge.launched",
            {
                "commtel.hedge.name": event.hedge,
                "commtel.hedge.attempt": event.attempt,
                "commtel.hedge.delay_s": event.delay_s,
                "commtel.hedge.reason": event.reason,
            },
        )


@handles(HedgeDenied)
def _on_denied(event: HedgeDenied) -> None:
    metrics = get_metrics()
    metrics.child(metrics.hedges, event.hedge, "denied").inc()
    if span := recording_span():
        span.add_event(
            "commtel.hedge.denied", {"commtel.hedge.name": event.hedge, "commtel.hedge.budget": event.budget}
        )
