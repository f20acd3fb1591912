"""Correlation context across threads and tasks, JSON logs with ids, and redaction everywhere."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from concurrent.futures import ThreadPoolExecutor

import pytest

from commtel import (
    ContextExecutor,
    configure_logging,
    correlation_context,
    get_correlation_id,
    get_logger,
    get_platform_context,
    inject_headers,
    platform_context,
    register_secret,
)
from commtel.context import (
    ASGICorrelationMiddleware,
    CorrelationMiddleware,
    extract_correlation_id,
    run_in_context,
    set_correlation_id,
)
from commtel.telemetry import start_span


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    yield stream
    configure_logging("WARNING", json=True)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_fresh_correlation_id_is_stable_within_a_context() -> None:
    """Without an id one is made, and the same one is returned afterwards."""
    with correlation_context() as cid:
        assert get_correlation_id() == cid
        assert len(cid) == 32


def test_no_correlation_id_is_stored_outside_a_context(spans) -> None:
    """Outside correlation_context: the current trace's id, else a fresh one each time, never kept on the root context."""
    from commtel.context._correlation import peek_correlation_id

    assert peek_correlation_id() is None
    assert get_correlation_id() != get_correlation_id()
    assert peek_correlation_id() is None
    with start_span("outer") as outer, start_span("inner") as inner:
        trace_id = format(outer.get_span_context().trace_id, "032x")
        assert get_correlation_id() == trace_id
    assert outer.attributes["commtel.correlation_id"] == inner.attributes["commtel.correlation_id"] == trace_id
    with start_span("another") as another:
        assert another.attributes["commtel.correlation_id"] != trace_id  # a new trace, a new id


def test_inject_headers_can_leave_the_correlation_id_out() -> None:
    """correlation=False: no X-Correlation-ID, and the id is taken out of the context's baggage; traceparent stays."""
    with correlation_context("abc-123"), start_span("out"):
        headers = inject_headers({}, correlation=False)
    assert "X-Correlation-ID" not in headers and "abc-123" not in headers.get("baggage", "")
    assert headers["traceparent"].startswith("00-")


def test_correlation_id_survives_thread_pool_hop() -> None:
    """ContextExecutor and run_in_context carry the id into worker threads; a plain pool does not."""
    with correlation_context("req-42"):
        with ContextExecutor(2) as pool:
            assert pool.submit(get_correlation_id).result() == "req-42"
        with ThreadPoolExecutor(1) as plain:
            assert plain.submit(run_in_context(get_correlation_id)).result() == "req-42"
            assert plain.submit(get_correlation_id).result() != "req-42"


def test_correlation_id_survives_asyncio_gather() -> None:
    """Tasks created under a correlation id see it, and their own changes stay isolated."""

    async def child(n: int) -> tuple[str, str]:
        before = get_correlation_id()
        with correlation_context(f"child-{n}"):
            await asyncio.sleep(0)
            inner = get_correlation_id()
        return before, inner

    async def main() -> list[tuple[str, str]]:
        with correlation_context("parent"):
            return await asyncio.gather(*(child(n) for n in range(3)))

    results = asyncio.run(main())
    assert [b for b, _ in results] == ["parent"] * 3
    assert [i for _, i in results] == ["child-0", "child-1", "child-2"]


def test_outgoing_headers_carry_correlation_baggage_and_traceparent() -> None:
    """inject_headers adds X-Correlation-ID, W3C baggage and traceparent; extraction reads either."""
    with correlation_context("abc-123"), start_span("out"):
        headers = inject_headers({})
    assert headers["X-Correlation-ID"] == "abc-123"
    assert "correlation_id=abc-123" in headers["baggage"]
    assert headers["traceparent"].startswith("00-")
    assert extract_correlation_id({"x-correlation-id": "abc-123"}) == "abc-123"
    assert extract_correlation_id({"baggage": "correlation_id=from-bag"}) == "from-bag"
    assert extract_correlation_id({"X-Correlation-ID": "bad\nvalue"}) is None


def test_invalid_correlation_id_is_rejected_with_reason() -> None:
    """set_correlation_id refuses empty or unprintable ids with a clear message."""
    with pytest.raises(ValueError, match="printable"):
        set_correlation_id("")


def test_wsgi_middleware_sets_and_echoes_correlation_id() -> None:
    """The WSGI middleware runs the app under the incoming id and echoes it in the response."""
    seen: list[str] = []

    def app(environ, start_response):
        seen.append(get_correlation_id())
        start_response("200 OK", [])
        return [b"ok"]

    headers_out: list = []
    body = CorrelationMiddleware(app)({"HTTP_X_CORRELATION_ID": "wsgi-1"}, lambda s, h, *a: headers_out.extend(h))
    assert list(body) == [b"ok"]
    assert seen == ["wsgi-1"]
    assert ("X-Correlation-ID", "wsgi-1") in headers_out


def test_asgi_middleware_sets_and_echoes_correlation_id() -> None:
    """The ASGI middleware runs the app under the incoming id and echoes it in the response."""
    seen: list[str] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        seen.append(get_correlation_id())
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [(b"x-correlation-id", b"asgi-1")]}
    asyncio.run(ASGICorrelationMiddleware(app)(scope, None, send))
    assert seen == ["asgi-1"]
    assert (b"x-correlation-id", b"asgi-1") in sent[0]["headers"]


def test_json_log_line_has_ids_of_active_span_and_context(log_stream: io.StringIO) -> None:
    """A JSON line carries the active span's trace/span ids, the correlation id, platform and fields."""
    log = get_logger("app.test", platform="twitter")
    with correlation_context("log-corr"), start_span("logging") as span:
        log.info("sent", tweet_id=1)
    ctx = span.get_span_context()
    entry = lines(log_stream)[-1]
    assert entry["message"] == "sent"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "app.test"
    assert entry["trace_id"] == format(ctx.trace_id, "032x")
    assert entry["span_id"] == format(ctx.span_id, "016x")
    assert entry["correlation_id"] == "log-corr"
    assert entry["platform"] == "twitter"
    assert entry["tweet_id"] == 1
    assert "timestamp" in entry


def test_platform_context_is_isolated_per_thread() -> None:
    """A platform context set in one thread is not visible in another."""
    with platform_context("discord", user_id=7):
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(get_platform_context).result() is None
        ctx = get_platform_context()
        assert ctx is not None
        assert ctx.platform == "discord"
    assert get_platform_context() is None


def test_secret_never_reaches_logs_spans_or_exception_text(log_stream: io.StringIO, spans) -> None:
    """A registered secret and credential-shaped fields are redacted in every output."""
    secret = "sk-live-9f8e7d6c5b4a"
    register_secret(secret)
    log = get_logger("app.secret")
    with start_span("leaky", attributes={"note": f"key is {secret}", "api_key": "whatever"}) as span:
        log.info(f"using {secret}", password="hunter22", headers={"Authorization": "Bearer tok123456"})
        try:
            raise RuntimeError(f"failed with {secret}")
        except RuntimeError:
            log.exception("boom")
            span.record_exception(RuntimeError(f"failed with {secret}"))
    logging.getLogger("thirdparty").warning("raw %s", secret)
    text = log_stream.getvalue()
    exported = "".join(s.to_json() for s in spans.get_finished_spans())
    for output in (text, exported):
        assert secret not in output
        assert "hunter22" not in output
        assert "tok123456" not in output
    assert "[REDACTED]" in text
