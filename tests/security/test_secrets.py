"""Secrets stay out of spans, span events and log lines, whatever churns around them.

Spans are read as made (a span processor on the provider, before any exporter): what an
application's own TracerProvider would export, with no RedactingSpanExporter in between.
Log lines are what ``configure_logging`` writes, commtel's records and forwarded
third-party ones (httpx, urllib3) alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from commtel import _redaction
from commtel.instrumentation.aiohttp import AioHttpInstrumentor
from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.instrumentation.requests import RequestsInstrumentor
from commtel.oauth import OAuthClient, OAuthProvider
from commtel.oauth._flow import EndpointResponse
from commtel.simulator import SimulatedPlatform
from commtel.telemetry import start_span
from tests.security.conftest import measured


class _RawSpans(SpanProcessor):
    """Spans as commtel made them, before any exporter."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)

    def text(self) -> str:
        return "\n".join(span.to_json() for span in self.spans)


@pytest.fixture
def raw_spans() -> Iterator[_RawSpans]:
    raw = _RawSpans()
    provider = trace.get_tracer_provider()
    provider.add_span_processor(raw)  # type: ignore[attr-defined]
    yield raw
    active = provider._active_span_processor  # type: ignore[attr-defined]
    active._span_processors = tuple(p for p in active._span_processors if p is not raw)


@pytest.fixture
def log_lines(log_stream: Any) -> Callable[[], str]:
    return log_stream.getvalue  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def platform() -> Iterator[SimulatedPlatform]:
    """One simulated platform for this module's calls (stopping one costs 0.5 s)."""
    with SimulatedPlatform("secrets", limit=1000) as simulated:
        yield simulated


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


# -- a client secret and 10,000 token rotations ------------------------------------------------

ROTATIONS = 10_000


def _rotate(client: OAuthClient, platform: SimulatedPlatform) -> str:
    """One refresh through the client's own token flow, answered with the bytes the platform's endpoint sends.

    The flow is the sans-I/O core that ``client.refresh()`` drives over HTTP; a real HTTP
    exchange costs ~1-4 ms here, too much for 10,000 of them in the test suite, so the
    exchanges before and after these run over HTTP and these are handed the response.
    """
    flow = client._renewal(client._token, time.time())
    next(flow)
    body = {
        "access_token": platform.issue_token(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": secrets.token_urlsafe(24),
    }
    try:
        flow.send(EndpointResponse(200, json.dumps(body).encode(), "application/json"))
    except StopIteration as done:
        return client._save(done.value).access_token
    raise AssertionError("the refresh flow asked for a second request")  # pragma: no cover


def test_a_client_secret_stays_redacted_after_10_000_token_rotations(raw_spans: _RawSpans, log_lines: Any) -> None:
    """It leaked after 300 refreshes: the registry kept only the newest 512 values."""
    client_secret = _secret("cs")
    with SimulatedPlatform("oauth", client_secret=client_secret) as platform:
        provider = OAuthProvider("sim", f"{platform.url}/authorize", f"{platform.url}/oauth/token")
        with OAuthClient(provider, platform.client_id, client_secret, grant_type="client_credentials") as client:
            issued = [client.client_credentials().access_token]  # over HTTP
            started = time.perf_counter()
            issued += [_rotate(client, platform) for _ in range(ROTATIONS - 2)]
            measured("10,000 token rotations, s", time.perf_counter() - started)
            issued.append(client.client_credentials().access_token)  # over HTTP again
            assert len(set(issued)) == ROTATIONS
            assert len(_redaction._registry.rotating) <= _redaction.MAX_ROTATING

            logging.getLogger("app").error("token call failed: client_secret=%s (%s)", client_secret, client_secret)
            logging.getLogger("app").info("new token %s", issued[-1])
            with pytest.raises(RuntimeError), start_span("app.call"):
                raise RuntimeError(f"provider rejected {client_secret}")  # noqa: EM102
            assert _redaction.redact_text(client_secret) == "[REDACTED]"
            line = f"POST /oauth/token client_secret={client_secret} ".ljust(1024, "x")
            started = time.perf_counter()
            for _ in range(100):
                _redaction.redact_text(line)
            measured("redact a 1 KB line after 10,000 rotations, us", (time.perf_counter() - started) * 1e4)

    lines = log_lines()
    assert lines.count("[REDACTED]") >= 3
    assert raw_spans.text().count("[REDACTED]") >= 1
    for where, text in (("log line", lines), ("span", raw_spans.text())):
        assert client_secret not in text, where
        assert issued[-1] not in text, where


# -- query secrets through instrumented clients ------------------------------------------------

#: The query parameters OpenTelemetry's conventions redact in url.full, and commtel's additions.
QUERY_SECRETS = ("key", "jwt", "session", "auth", "token", "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature")


def _httpx(url: str) -> None:
    import httpx

    with httpx.Client() as client:
        client.get(url).raise_for_status()


def _httpx_async(url: str) -> None:
    import httpx

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            (await client.get(url)).raise_for_status()

    asyncio.run(run())


def _requests(url: str) -> None:
    import requests

    requests.get(url, timeout=10).raise_for_status()


def _aiohttp(url: str) -> None:
    import aiohttp

    async def run() -> None:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            response.raise_for_status()

    asyncio.run(run())


CLIENTS: dict[str, tuple[Callable[[str], None], type]] = {
    "httpx": (_httpx, HTTPXInstrumentor),
    "httpx-async": (_httpx_async, HTTPXInstrumentor),
    "requests": (_requests, RequestsInstrumentor),
    "aiohttp": (_aiohttp, AioHttpInstrumentor),
}


@pytest.fixture
def instrumented(request: pytest.FixtureRequest) -> Iterator[Callable[[str], None]]:
    send, instrumentor_type = CLIENTS[request.param]
    instrumentor = instrumentor_type()
    instrumentor.instrument(policies={"default": {"retry": {"max_attempts": 2, "base_delay": 0.0, "jitter": False}}})
    try:
        yield send
    finally:
        instrumentor.uninstrument()


@pytest.mark.parametrize("instrumented", list(CLIENTS), indirect=True)
def test_no_query_secret_reaches_a_span_a_span_event_or_a_log_line(
    instrumented: Callable[[str], None], raw_spans: _RawSpans, log_lines: Any, platform: SimulatedPlatform
) -> None:
    """A failing call whose URL carries a password and every listed query secret, recorded everywhere."""
    values = {name: _secret(name.lower()) for name in QUERY_SECRETS}
    password = _secret("pw")
    query = "&".join(f"{name}={value}" for name, value in values.items())
    url = f"http://user:{password}@{platform.url.removeprefix('http://')}/status/500?page=2&{query}"
    with pytest.raises(Exception) as failure, start_span("app.call"):  # noqa: PT011 - each client's own error
        instrumented(url)
    logging.getLogger("app").error("call failed: %s", failure.value, exc_info=failure.value)

    spans = raw_spans.text()
    lines = log_lines()
    assert [s.kind for s in raw_spans.spans].count(trace.SpanKind.CLIENT) == 2  # both attempts were recorded
    assert '"exception.stacktrace"' in spans
    assert "page=2" in spans
    assert "page=2" in lines
    for where, text in (("span or span event", spans), ("log line", lines)):
        for name, value in values.items():
            assert value not in text, f"{name}= leaked into a {where}"
        assert password not in text, f"the URL's password leaked into a {where}"
