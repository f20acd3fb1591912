"""Operation tracker: statistics, metrics with exemplars, spans."""

from __future__ import annotations

import asyncio

import pytest

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from commtel import OperationTracker, correlation_context


def test_stats_and_breakdown_count_outcomes() -> None:
    """get_stats gives success_rate in percent and the breakdown sums per operation."""
    tracker = OperationTracker()
    tracker.start_operation("send_tweet", "twitter").complete(success=True)
    tracker.start_operation("send_tweet", "twitter").complete(success=False, error=TimeoutError("slow"))
    tracker.start_operation("send_mail", "email").complete(success=True)
    stats = tracker.get_stats(platform="twitter")
    assert stats["total"] == 2
    assert stats["success_rate"] == 50.0
    assert stats["errors_by_type"] == {"TimeoutError": 1}
    assert tracker.get_stats()["total"] == 3
    breakdown = tracker.get_operation_breakdown()
    assert breakdown["send_tweet"]["successful"] == 1
    assert breakdown["send_mail"]["total"] == 1


def test_duration_histogram_carries_trace_exemplar(registry: CollectorRegistry, spans) -> None:
    """The duration histogram has an OpenMetrics exemplar whose trace_id is the operation span's."""
    tracker = OperationTracker()
    with correlation_context("corr-1"), tracker.start_operation("fetch", "github") as op:
        pass
    trace_id = format(op.span.get_span_context().trace_id, "032x")
    text = openmetrics(registry).decode()
    exemplars = [
        s.exemplar
        for fam in text_string_to_metric_families(text)
        if fam.name == "commtel_operation_duration_seconds"
        for s in fam.samples
        if s.exemplar is not None
    ]
    assert exemplars, text
    assert exemplars[0].labels["trace_id"] == trace_id
    finished = [s for s in spans.get_finished_spans() if s.name == "fetch"]
    assert finished[0].attributes["commtel.correlation_id"] == "corr-1"
    assert finished[0].attributes["commtel.platform"] == "github"


def test_decorator_records_errors_sync_and_async(registry: CollectorRegistry) -> None:
    """The track decorator records failures with their type for sync and async functions."""
    tracker = OperationTracker()

    @tracker.track("op", platform="p")
    def boom() -> None:
        raise ValueError("bad")

    @tracker.track("op", platform="p")
    async def fine() -> int:
        return 3

    with pytest.raises(ValueError, match="bad"):
        boom()
    assert asyncio.run(fine()) == 3
    assert tracker.get_stats("p")["errors_by_type"] == {"ValueError": 1}
    error = registry.get_sample_value(
        "commtel_operation_duration_seconds_count", {"operation": "op", "platform": "p", "outcome": "error"}
    )
    ok = registry.get_sample_value(
        "commtel_operation_duration_seconds_count", {"operation": "op", "platform": "p", "outcome": "success"}
    )
    assert (error, ok) == (1.0, 1.0)
