"""Telemetry primitives: operation tracking vs a bare span, event dispatch, metric samples."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter

from benchmarks._harness import Case
from commtel import OperationTracker, _events
from commtel.telemetry._metrics import use_registry
from commtel.testing import capture_events


def cases() -> list[Case]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 16))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("bench")
    metrics = use_registry(CollectorRegistry())
    tracker = OperationTracker()

    def bare_span() -> None:
        with tracer.start_as_current_span("op"):
            pass

    def tracked() -> None:
        with tracker.start_operation("op", "bench"):
            pass

    plain = Counter("bench_plain", "x", ("a", "b"), registry=CollectorRegistry())

    def labels_inc() -> None:
        plain.labels("x", "y").inc()

    def child_inc() -> None:
        metrics.child(metrics.messages, "email", "completed").inc()

    class Nop(_events.Event):
        __slots__ = ()

    with capture_events():
        pass

    def emit_default() -> None:
        if listeners := _events.active_listeners():
            _events.emit(Nop(), listeners)

    return [
        Case("operation tracker vs recording span", "OTel SDK span (batch processor)", bare_span, baseline=True),
        Case(
            "operation tracker vs recording span",
            "commtel OperationTracker",
            tracked,
            note="(span + histogram + exemplar)",
        ),
        Case("metric sample", "prometheus_client labels(a,b).inc()", labels_inc, baseline=True),
        Case("metric sample", "commtel Metrics.child(...).inc()", child_inc),
        Case("event dispatch (unhandled type)", "commtel emit to telemetry listener", emit_default),
    ]
