"""Rate-limiter telemetry: contract metrics, span events on throttling, no key anywhere."""

from __future__ import annotations

import pytest

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from commtel import RateLimiter, RateLimitExceeded
from commtel.ratelimit import SlidingWindow
from commtel.telemetry import start_span
from tests.harness.clock import FakeClock


def test_decisions_waits_and_throttle_span_events(
    monkeypatch: pytest.MonkeyPatch, registry: CollectorRegistry, spans: InMemorySpanExporter
) -> None:
    """Decisions are counted by outcome, waits observed, throttles added to the current span."""
    clock = FakeClock().install(monkeypatch)
    limiter = RateLimiter(SlidingWindow(1, 2.0), name="api", platform="twitter")
    with start_span("send"):
        limiter.acquire("secret-user-id")
        limiter.acquire("secret-user-id")
        with pytest.raises(RateLimitExceeded):
            limiter.acquire("secret-user-id", timeout=0)
        limiter.feedback("secret-user-id", 429, {"Retry-After": "3"})
    labels = {"limiter": "api", "platform": "twitter"}
    assert registry.get_sample_value("commtel_ratelimit_decisions_total", {**labels, "decision": "allowed"}) == 2
    assert registry.get_sample_value("commtel_ratelimit_decisions_total", {**labels, "decision": "throttled"}) == 2
    assert registry.get_sample_value("commtel_ratelimit_wait_seconds_count", labels) == 1
    assert registry.get_sample_value("commtel_ratelimit_wait_seconds_sum", labels) == pytest.approx(2.0)
    (span,) = spans.get_finished_spans()
    names = [event.name for event in span.events]
    assert names == ["commtel.ratelimit.throttled", "commtel.ratelimit.throttled", "commtel.ratelimit.server_throttled"]
    assert span.events[0].attributes["commtel.ratelimit.retry_after_s"] == pytest.approx(2.0)
    assert "secret-user-id" not in repr([dict(e.attributes or {}) for e in span.events])
    assert clock.sleeps == [pytest.approx(2.0)]
