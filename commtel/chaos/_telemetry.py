"""Telemetry handlers for fault injection: ``commtel_faults_injected_total`` and the mark on the span."""

from __future__ import annotations

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import FaultInjected, FaultInjectorCreated


_log = get_logger("commtel.chaos")


@handles(FaultInjectorCreated)
def _on_created(event: FaultInjectorCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.faults_injected, event.injector)


@handles(FaultInjected)
def _on_injected(event: FaultInjected) -> None:
    metrics = get_metrics()
    metrics.child(metrics.faults_injected, event.injector, event.fault).inc()
    if span := recording_span():
        span.set_attribute("commtel.chaos.injected", True)  # noqa: FBT003 - an attribute value
        span.add_event(
            "commtel.chaos.fault",
            {
                "commtel.chaos.injector": event.injector,
                "commtel.chaos.fault": event.fault,
                "commtel.chaos.latency_s": event.latency_s,
            },
        )
    _log.debug("fault injector %s injected %s", event.injector, event.fault, injector=event.injector, fault=event.fault)
