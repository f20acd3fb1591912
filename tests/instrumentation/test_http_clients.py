"""Plain httpx (sync + async), requests and aiohttp programs against the simulated platform.

One ``instrument()`` call gives them retries, breaker, rate limiting, spans and metrics;
``uninstrument()`` gives the plain behaviour back.
"""

from __future__ import annotations

import logging
import time

from typing import Any

import pytest

from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import SpanKind

from commtel import CircuitOpenError, correlation_context
from commtel.simulator import SimulatedPlatform


FAST = {"max_attempts": 3, "base_delay": 0.0, "jitter": False}


def _client_spans(spans: Any) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]


def test_retries_transient_errors_with_spans_and_metrics(client, platform, spans, registry) -> None:
    """Two 503s then success: three physical requests, one CLIENT span each, one INTERNAL span, metrics."""
    client.instrument(policies={"default": {"retry": FAST}, "hosts": {"127.0.0.1": {"platform": "sim"}}})
    platform.fail_next(2)
    status, body = client.get(f"{platform.url}/api/items")
    assert status == 200 and body["ok"]
    assert platform.stats.requests == 3
    attempts = _client_spans(spans)
    assert [s.attributes["http.response.status_code"] for s in attempts] == [503, 503, 200]
    assert [s.attributes.get("http.request.resend_count") for s in attempts] == [None, 1, 2]
    first = attempts[0]
    assert first.name == "GET"
    assert first.attributes["http.request.method"] == "GET"
    assert first.attributes["url.full"] == f"{platform.url}/api/items"
    assert first.attributes["server.address"] == "127.0.0.1"
    assert first.attributes["server.port"] == int(platform.url.rsplit(":", 1)[1])
    assert first.attributes["error.type"] == "503"
    [logical] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.INTERNAL]
    assert logical.name == "HTTP GET" and logical.attributes["commtel.platform"] == "sim"
    assert [e.name for e in logical.events] == ["commtel.retry", "commtel.retry"]
    assert all(s.parent.span_id == logical.context.span_id for s in attempts)
    labels = {"operation": "HTTP GET", "platform": "sim"}
    assert registry.get_sample_value("commtel_retry_calls_total", {**labels, "result": "success_after_retry"}) == 1
    assert registry.get_sample_value("commtel_retry_attempts_total", {**labels, "reason": "503"}) == 2
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", {**labels, "outcome": "success"}) == 1


def test_uninstrument_restores_plain_behaviour(client, platform, spans) -> None:
    """After uninstrument a 503 comes straight back: no retry, no span."""
    client.instrument(policies={"default": {"retry": FAST}}).uninstrument()
    platform.fail_next(1)
    status, _ = client.get(f"{platform.url}/api/items")
    assert status == 503
    assert platform.stats.requests == 1
    assert spans.get_finished_spans() == ()


def test_exhausted_retries_return_the_last_response(client, platform) -> None:
    """When every attempt fails with a status, the program sees the last response as before."""
    client.instrument(policies={"default": {"retry": FAST}})
    platform.fail_next(5)
    status, body = client.get(f"{platform.url}/api/items")
    assert status == 503 and body["error"] == "injected"
    assert platform.stats.requests == 3


def test_breaker_opens_and_rejects_without_a_request(client, platform, registry) -> None:
    """Server errors open the host's breaker; the next call fails fast with an error the client's users catch."""
    client.instrument(policies={"default": {"retry": False, "breaker": {"failure_threshold": 2}}})
    for _ in range(2):
        assert client.get(f"{platform.url}/status/500")[0] == 500
    with pytest.raises(client.error()) as caught:
        client.get(f"{platform.url}/api/items")
    assert isinstance(caught.value, CircuitOpenError)
    assert caught.value.breaker == "other" and caught.value.retry_after_s > 0
    assert platform.stats.requests == 2
    assert registry.get_sample_value("commtel_circuit_state", {"breaker": "other"}) == 2  # open


def test_rate_limit_paces_requests(client, platform) -> None:
    """A host's limiter spaces requests out instead of letting them burst."""
    client.instrument(policies={"hosts": {"127.0.0.1": {"rate_limit": {"rate": 25, "burst": 1}}}})
    started = time.monotonic()
    for _ in range(3):
        assert client.get(f"{platform.url}/api/items")[0] == 200
    assert 2 / 25 - 0.01 <= time.monotonic() - started < 2.0  # paced, not stalled


def test_server_rate_limit_headers_make_the_limiter_wait(client) -> None:
    """RateLimit headers saying nothing remains block the host's limiter until the reset: no 429 at all."""
    with SimulatedPlatform("tiny", limit=1, window_s=0.5) as tiny:
        client.instrument(policies={"default": {"retry": FAST, "rate_limit": {"rate": 100, "burst": 10}}})
        assert client.get(f"{tiny.url}/api/a")[0] == 200
        started = time.monotonic()
        assert client.get(f"{tiny.url}/api/b")[0] == 200
        assert 0.2 <= time.monotonic() - started < 2.0  # until the 0.5 s window resets, not longer
        assert tiny.stats.throttled == 0


def test_server_429_is_retried_after_retry_after(client, registry) -> None:
    """Without a limiter, a 429 is retried once the server's Retry-After has passed."""
    with SimulatedPlatform("tiny", limit=1, window_s=1.0) as tiny:
        client.instrument(policies={"default": {"retry": FAST}})
        assert client.get(f"{tiny.url}/api/a")[0] == 200
        started = time.monotonic()
        assert client.get(f"{tiny.url}/api/b")[0] == 200
        assert 0.5 <= time.monotonic() - started < 3.0  # Retry-After (at most 1 s), not longer
        assert tiny.stats.throttled == 1
    assert (
        registry.get_sample_value(
            "commtel_retry_attempts_total", {"operation": "HTTP GET", "platform": "other", "reason": "rate_limited"}
        )
        == 1
    )


def test_outgoing_requests_carry_trace_context_and_correlation_id(client, platform, spans) -> None:
    """traceparent names the attempt's CLIENT span; X-Correlation-ID and baggage carry the correlation id where allowed."""
    client.instrument(policies={"hosts": {"127.0.0.1": {"send_correlation": True}}})
    with correlation_context("corr-42"):
        _, body = client.get(f"{platform.url}/api/items", headers={"X-Custom": "1"})
    assert body["correlation_id"] == "corr-42"
    assert platform.requests  # recorded before the answer
    seen = {k.lower(): v for k, v in platform.requests[-1].headers.items()}
    assert seen["x-custom"] == "1"
    assert "correlation_id=corr-42" in seen["baggage"]
    [attempt] = _client_spans(spans)
    assert seen["traceparent"].split("-")[2] == format(attempt.context.span_id, "016x")


def test_post_is_not_retried_unless_configured(client, platform) -> None:
    """Non-idempotent methods are sent once by default; retry_methods opts them in."""
    client.instrument(policies={"default": {"retry": FAST}})
    platform.fail_next(1)
    assert client.send("POST", f"{platform.url}/api/items", None)[0] == 503
    assert platform.stats.requests == 1
    client.instrumentor().uninstrument()
    client.instrument(policies={"default": {"retry": FAST, "retry_methods": ["GET", "POST"]}})
    platform.fail_next(1)
    assert client.send("POST", f"{platform.url}/api/items", None)[0] == 200


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "commtel-first"])
def test_one_client_span_per_physical_request_with_contrib_active(client, platform, spans, contrib_first) -> None:
    """With contrib's instrumentor also active, each physical request still yields exactly one CLIENT span."""
    contrib = client.contrib_instrumentor()
    if contrib_first:
        contrib.instrument()
    client.instrument(policies={"default": {"retry": FAST}})
    if not contrib_first:
        contrib.instrument()
    platform.fail_next(1)
    assert client.get(f"{platform.url}/api/items")[0] == 200
    assert platform.stats.requests == 2
    attempts = _client_spans(spans)
    assert len(attempts) == 2
    assert {s.instrumentation_scope.name for s in attempts} == {client.instrumentor.__module__}


def test_hooks_see_stable_tuples_and_failures_are_logged(client, platform, caplog) -> None:
    """Hooks get RequestInfo/ResponseInfo; a hook that raises is logged and the request goes on."""
    seen: list[Any] = []

    def request_hook(span: Any, info: Any) -> None:
        seen.append(info)
        raise RuntimeError("hook bug")

    def response_hook(span: Any, info: Any, response: Any) -> None:
        seen.append(response)

    client.instrument(request_hook=request_hook, response_hook=response_hook)
    with caplog.at_level(logging.ERROR, logger="commtel.instrumentation"):
        assert client.get(f"{platform.url}/api/items")[0] == 200
    request_info, response_info = seen
    assert (request_info.method, request_info.resend_count) == ("GET", 0)
    assert request_info.url == f"{platform.url}/api/items"
    assert response_info.status_code == 200
    assert "hook" in caplog.text


def test_suppressed_http_instrumentation_is_honoured(client, platform, spans) -> None:
    """Inside suppress_http_instrumentation() commtel neither traces nor retries."""
    client.instrument(policies={"default": {"retry": FAST}})
    platform.fail_next(1)
    with suppress_http_instrumentation():
        assert client.get(f"{platform.url}/api/items")[0] == 503
    assert spans.get_finished_spans() == ()


def test_secret_query_values_are_redacted_in_spans(client, platform, spans) -> None:
    """url.full keeps the URL but not the value of a token-like query parameter."""
    client.instrument()
    client.get(f"{platform.url}/api/items?access_token=s3cr3t-value&page=2")
    [attempt] = _client_spans(spans)
    url = attempt.attributes["url.full"]
    assert url.startswith(f"{platform.url}/api/items?access_token=") and url.endswith("&page=2")
    assert "s3cr3t" not in url


def test_aiohttp_raise_for_status_is_retried_like_the_status(platform, registry) -> None:
    """``ClientSession(raise_for_status=True)`` raises inside the attempt: a 503 is retried all the same.

    When retries run out the program gets aiohttp's own ``ClientResponseError``, as it would without commtel.
    """
    import asyncio

    import aiohttp

    from commtel.instrumentation.aiohttp import AioHttpInstrumentor

    async def get() -> int:
        async with (
            aiohttp.ClientSession(raise_for_status=True) as session,
            session.get(f"{platform.url}/api/items") as response,
        ):
            return response.status

    AioHttpInstrumentor().instrument(policies={"default": {"retry": FAST}, "hosts": {"127.0.0.1": {"platform": "sim"}}})
    platform.fail_next(2)
    assert asyncio.run(get()) == 200
    assert platform.stats.requests == 3
    labels = {"operation": "HTTP GET", "platform": "sim"}
    assert registry.get_sample_value("commtel_retry_attempts_total", {**labels, "reason": "503"}) == 2
    platform.fail_next(5)
    with pytest.raises(aiohttp.ClientResponseError) as raised:
        asyncio.run(get())
    assert raised.value.status == 503
    assert platform.stats.requests == 6
