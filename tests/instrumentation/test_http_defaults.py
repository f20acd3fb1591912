"""What instrumenting changes by default (telemetry only), and the settings users already set for contrib.

Each test runs for httpx (sync and async), requests and aiohttp against the real simulated
platform on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opentelemetry.trace import SpanKind, StatusCode

from commtel import CircuitOpenError, ConfigurationError, OAuthError, RateLimitExceeded, correlation_context
from commtel.errors import RateLimitedByServer
from commtel.instrumentation._rejections import ClientErrors
from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.simulator import SimulatedPlatform


FAST = {"max_attempts": 3, "base_delay": 0.0, "jitter": False}


def _spans(spans: Any, kind: SpanKind) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.kind is kind]


def _seen(platform: SimulatedPlatform, count: int) -> list[dict[str, str]]:
    """Lower-cased headers of the last *count* requests (the server records each before answering it)."""
    return [{k.lower(): v for k, v in r.headers.items()} for r in list(platform.requests)[-count:]]


def test_default_instrumentation_only_observes(client, platform, spans, registry) -> None:
    """No policies: a 503 comes straight back, failures open no breaker, and every call is traced."""
    client.instrument()
    platform.fail_next(1)
    assert client.get(f"{platform.url}/api/items")[0] == 503
    for _ in range(8):  # more failures than any breaker threshold
        assert client.get(f"{platform.url}/status/500")[0] == 500
    assert client.get(f"{platform.url}/api/items")[0] == 200
    assert platform.stats.requests == 10  # one physical request per call
    assert len(_spans(spans, SpanKind.CLIENT)) == len(_spans(spans, SpanKind.INTERNAL)) == 10
    assert (
        registry.get_sample_value(
            "commtel_retry_calls_total", {"operation": "HTTP GET", "platform": "other", "result": "success_first_try"}
        )
        is None
    )
    assert registry.get_sample_value("commtel_circuit_calls_total", {"breaker": "other", "result": "failure"}) is None
    count = registry.get_sample_value(
        "commtel_operation_duration_seconds_count", {"operation": "HTTP GET", "platform": "other", "outcome": "success"}
    )
    assert count == 10


def test_operation_span_describes_the_request_and_its_final_outcome(client, platform, spans) -> None:
    """INTERNAL span: server.address and redacted url.full; ERROR only when the final answer is a 5xx."""
    client.instrument(policies={"default": {"retry": FAST}})
    platform.fail_next(2)
    assert client.get(f"{platform.url}/api/items?token=s3cr3t-token&page=1")[0] == 200
    platform.fail_next(3)
    assert client.get(f"{platform.url}/api/items")[0] == 503  # retried out: the last response, as before
    assert client.send("POST", f"{platform.url}/status/500", None)[0] == 500  # not retried: final at once
    recovered, exhausted, final = _spans(spans, SpanKind.INTERNAL)
    assert recovered.status.status_code is StatusCode.UNSET
    assert recovered.attributes["server.address"] == "127.0.0.1"
    assert recovered.attributes["http.request.method"] == "GET"
    assert recovered.attributes["url.full"] == f"{platform.url}/api/items?token=REDACTED&page=1"
    assert recovered.attributes["http.response.status_code"] == 200
    assert exhausted.status.status_code is StatusCode.ERROR
    assert exhausted.attributes["error.type"] == "RetryExhausted"
    assert exhausted.attributes["http.response.status_code"] == 503
    assert final.status.status_code is StatusCode.ERROR and final.attributes["error.type"] == "500"
    assert platform.stats.requests == 3 + 3 + 1


def test_rejection_is_caught_by_the_libraries_own_except_clause(client, platform) -> None:
    """An open breaker raises an error of the client library's hierarchy that is also a CircuitOpenError."""
    client.instrument(policies={"hosts": {"127.0.0.1": {"breaker": {"failure_threshold": 1, "recovery_timeout": 60}}}})
    assert client.get(f"{platform.url}/status/503")[0] == 503
    try:
        client.get(f"{platform.url}/api/items")
    except client.error() as caught:  # what the program already catches
        assert isinstance(caught, CircuitOpenError)
        assert caught.breaker == "127.0.0.1" and 0 < caught.retry_after_s <= 60
        assert str(caught).startswith("circuit '127.0.0.1' is open")
    else:
        pytest.fail("the open breaker let the request through")
    assert platform.stats.requests == 1


@pytest.mark.parametrize(
    "error",
    [CircuitOpenError("api", 2.5), RateLimitExceeded("api", 1.5), RateLimitedByServer("api", 30.0)],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize(
    "base", [httpx.TransportError, __import__("requests").ConnectionError, __import__("aiohttp").ClientConnectionError]
)
def test_rejections_become_library_errors_keeping_their_attributes(error, base) -> None:
    """Each rejection class converts to a subclass of both, keeping message, attributes and class name."""
    converted = ClientErrors(base, "tests").convert(error)
    assert isinstance(converted, base) and isinstance(converted, type(error))
    assert str(converted) == str(error) and type(converted).__name__ == type(error).__name__
    assert converted.retry_after_s == error.retry_after_s
    assert type(ClientErrors(base, "tests").convert(error)) is not type(converted)  # classes are per ClientErrors
    errors = ClientErrors(base, "tests")
    assert type(errors.convert(error)) is type(errors.convert(error))  # … and made once each


def test_errors_raised_inside_the_library_pass_unchanged(platform) -> None:
    """A commtel error raised inside the library's own call (an httpx event hook here) reaches the program as is."""
    HTTPXInstrumentor().instrument(policies={"default": {"retry": FAST}})

    def hook(response: httpx.Response) -> None:
        raise OAuthError("invalid_grant", provider="test")

    with httpx.Client(event_hooks={"response": [hook]}) as http, pytest.raises(OAuthError) as caught:
        http.get(f"{platform.url}/api/items")
    assert type(caught.value) is OAuthError


def test_each_top_level_request_gets_a_fresh_correlation_id(client, platform, spans) -> None:
    """Outside any context two requests carry different ids; the attempts of one request share its id."""
    client.instrument(policies={"default": {"retry": FAST}, "hosts": {"127.0.0.1": {"send_correlation": True}}})
    platform.fail_next(1)
    client.get(f"{platform.url}/api/one")
    client.get(f"{platform.url}/api/two")
    first, retried, second = (h["x-correlation-id"] for h in _seen(platform, 3))
    assert first == retried != second
    for span in spans.get_finished_spans():
        assert span.attributes["commtel.correlation_id"] in {first, second}
    with correlation_context("corr-7"):
        client.get(f"{platform.url}/api/three")
    [inside] = _seen(platform, 1)
    assert inside["x-correlation-id"] == "corr-7" and "correlation_id=corr-7" in inside["baggage"]


def test_correlation_id_goes_only_to_allowed_hosts(client, platform) -> None:
    """By default neither X-Correlation-ID nor the id in baggage is sent; traceparent is."""
    client.instrument()
    with correlation_context("corr-private"):
        _, body = client.get(f"{platform.url}/api/items")
    [seen] = _seen(platform, 1)
    assert body["correlation_id"] is None and "x-correlation-id" not in seen
    assert "corr-private" not in seen.get("baggage", "")
    assert seen["traceparent"].startswith("00-")


def test_propagation_follows_the_global_propagator(client, platform) -> None:
    """traceparent/baggage go out through OpenTelemetry's global propagator (what OTEL_PROPAGATORS sets up)."""
    from opentelemetry import propagate
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    client.instrument(policies={"hosts": {"127.0.0.1": {"send_correlation": True}}})
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(TraceContextTextMapPropagator())  # as OTEL_PROPAGATORS=tracecontext
    try:
        with correlation_context("corr-9"):
            client.get(f"{platform.url}/api/items")
    finally:
        propagate.set_global_textmap(previous)
    [seen] = _seen(platform, 1)
    assert "traceparent" in seen and "baggage" not in seen
    assert seen["x-correlation-id"] == "corr-9"  # commtel's own header, allowed for this host


def test_excluded_urls_are_left_alone(client, platform, spans, monkeypatch) -> None:
    """contrib's OTEL_PYTHON_<LIBRARY>_EXCLUDED_URLS (over the generic one): no span, no headers, no policy."""
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "/api/generic")
    monkeypatch.setenv(f"OTEL_PYTHON_{client.instrumentor._env_name}_EXCLUDED_URLS", "/api/health,/status/5.*")
    client.instrument(policies={"default": {"retry": FAST}})
    platform.fail_next(1)
    assert client.get(f"{platform.url}/api/health")[0] == 503  # not retried
    assert client.get(f"{platform.url}/api/generic")[0] == 200  # the library's own variable wins
    [health, generic] = _seen(platform, 2)
    assert "traceparent" not in health and "traceparent" in generic
    assert [s.attributes["url.full"] for s in _spans(spans, SpanKind.CLIENT)] == [f"{platform.url}/api/generic"]
    client.instrumentor().uninstrument()
    monkeypatch.delenv(f"OTEL_PYTHON_{client.instrumentor._env_name}_EXCLUDED_URLS")
    client.instrument(excluded_urls="/api/code")  # as contrib's instrument(excluded_urls=...)
    client.get(f"{platform.url}/api/code")
    client.get(f"{platform.url}/api/generic")
    assert len(_spans(spans, SpanKind.CLIENT)) == 2


def test_captured_headers_are_sanitized(client, platform, spans, monkeypatch) -> None:
    """OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_*: captured as lists; credentials never in clear."""
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "x-custom, authorization, x-session-.*"
    )
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", "content-type,X-RateLimit-.*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", ".*session.*")
    client.instrument()
    headers = {"X-Custom": "plain", "Authorization": "Bearer abcdef123456", "X-Session-Ref": "s-42", "X-Other": "no"}
    client.get(f"{platform.url}/api/items", headers=headers)
    [attempt] = _spans(spans, SpanKind.CLIENT)
    attributes = attempt.attributes
    assert attributes["http.request.header.x-custom"] == ("plain",)
    assert "[REDACTED]" in str(attributes["http.request.header.authorization"])
    assert "abcdef123456" not in str(attributes)
    assert attributes["http.request.header.x-session-ref"] == ("[REDACTED]",)
    assert "http.request.header.x-other" not in attributes
    assert attributes["http.response.header.content-type"] == ("application/json",)
    assert attributes["http.response.header.x-ratelimit-limit"] == ("100",)


def test_old_semantic_conventions_on_request(client, platform, spans, monkeypatch) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=http/dup adds the old attribute names next to the stable ones."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "database,http/dup")
    client.instrument()
    client.get(f"{platform.url}/api/items")
    [attempt] = _spans(spans, SpanKind.CLIENT)
    attributes = attempt.attributes
    assert attributes["http.method"] == attributes["http.request.method"] == "GET"
    assert attributes["http.url"] == attributes["url.full"]
    assert attributes["http.status_code"] == attributes["http.response.status_code"] == 200
    assert attributes["net.peer.name"] == "127.0.0.1" and attributes["net.peer.port"] == attributes["server.port"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_PYTHON_EXCLUDED_URLS", "/api/(unclosed"),
        ("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "x-[bad"),
        ("COMMTEL_METRICS_PORT", "ninety"),
        ("COMMTEL_POLICIES", "default = { retry = { max_attempts = 0 } }"),
    ],
)
def test_bad_settings_fail_at_instrument_and_patch_nothing(client, variable, value, monkeypatch) -> None:
    """A bad variable raises ConfigurationError naming it, before anything is patched."""
    import commtel.instrumentation._policies as policies

    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(policies, "_configured", None)  # the process-wide policies are read once
    instrumentor = client.instrumentor()
    with pytest.raises(ConfigurationError, match="COMMTEL_POLICIES|" + variable):
        instrumentor.instrument()
    assert not instrumentor.is_instrumented_by_opentelemetry
    monkeypatch.delenv(variable)
    monkeypatch.setattr(policies, "_configured", None)
    instrumentor.instrument()  # and once fixed, it works
