"""OAuth test fixtures: the authlib authorization server, and a secrets scan after every test.

Every test in this directory ends with a scan of what it exported — spans (both
before and after the redacting exporter), every metric sample of the test's
registry, and every log line (commtel's JSON lines and the raw records) — for
every secret the authorization server saw or issued and every secret a test
added to ``seen_secrets``. None may appear.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets

from collections.abc import Iterator

import pytest

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from prometheus_client import CollectorRegistry, generate_latest

import commtel

from commtel.oauth._providers import OAuthProvider
from commtel.telemetry import _logging
from tests.oauth.authserver import REDIRECT_URI, AuthServer


#: Every secret any OAuth test saw so far; each test's telemetry is checked against all of them.
SEEN: set[str] = set()


class _RawSpans(SpanProcessor):
    """Keeps spans as they were made, before any redaction, while a test is running."""

    def __init__(self) -> None:
        self.active = False
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.spans.append(span)


_RAW = _RawSpans()
trace.get_tracer_provider().add_span_processor(_RAW)  # type: ignore[attr-defined]


class _RawLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "commtel_fields", None)
        text = record.getMessage() + " " + repr(fields)
        if record.exc_info:
            text += " " + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def seen_secrets() -> set[str]:
    """Add secrets here that the authorization server does not know (e.g. the simulator's tokens)."""
    return SEEN


class Scan:
    """What one test exported: raw and exported spans, metric samples, JSON log lines, raw log records."""

    def __init__(self, registry: CollectorRegistry, spans, stream: io.StringIO, raw: _RawLogs) -> None:  # noqa: ANN001
        self.registry = registry
        self.spans = spans
        self.stream = stream
        self.raw = raw

    def texts(self) -> dict[str, str]:
        return {
            "raw span": "\n".join(span.to_json() for span in _RAW.spans),
            "exported span": "\n".join(span.to_json() for span in self.spans.get_finished_spans()),
            "metric sample": generate_latest(self.registry).decode(),
            "json log line": self.stream.getvalue(),
            "raw log record": "\n".join(self.raw.lines),
        }

    def leaks(self, secrets: set[str]) -> dict[str, int]:
        """How many of *secrets* appear in each kind of output (only non-zero entries)."""
        found = {where: sum(s in text for s in secrets) for where, text in self.texts().items()}
        return {where: n for where, n in found.items() if n}


@pytest.fixture(autouse=True)
def scan(registry: CollectorRegistry, spans) -> Iterator[Scan]:  # noqa: ANN001
    """Scan every span, metric sample and log line of the test for every secret seen so far."""
    stream = io.StringIO()
    root = logging.getLogger()
    previous_level = root.level
    # The test authorization server is authlib's server side, which logs issued tokens at DEBUG;
    # that is the test server's own logging, not commtel's, so it stays out of the scan.
    server_log = logging.getLogger("authlib")
    server_level = server_log.level
    server_log.setLevel(logging.INFO)
    commtel.configure_logging("DEBUG", stream=stream)
    raw = _RawLogs()
    root.addHandler(raw)
    _RAW.spans.clear()
    _RAW.active = True
    result = Scan(registry, spans, stream, raw)
    try:
        yield result
    finally:
        _RAW.active = False
        root.removeHandler(raw)
        for handler in list(_logging._installed):
            root.removeHandler(handler)
        _logging._installed.clear()
        root.setLevel(previous_level)
        server_log.setLevel(server_level)
    assert result.leaks(SEEN) == {}, "secrets found in telemetry"


@pytest.fixture
def authserver() -> Iterator[AuthServer]:
    """A fresh authlib authorization server on a free port, sharing the secrets registry."""
    server = AuthServer()
    server.secrets = SEEN
    server.start()
    yield server
    server.stop()


@pytest.fixture
def provider(authserver: AuthServer) -> OAuthProvider:
    """An OAuthProvider pointing at the test authorization server."""
    base = authserver.url
    return OAuthProvider(
        name="testauth",
        authorize_url=f"{base}/authorize",
        token_url=f"{base}/token",
        revocation_url=f"{base}/revoke",
        scopes=("read",),
    )


@pytest.fixture
def client_secret(authserver: AuthServer) -> str:
    """A confidential client ``app`` registered with a fresh random secret."""
    secret = "cs-" + secrets.token_urlsafe(24)
    authserver.register_client("app", secret)
    # The Basic Authorization header carries it base64-encoded: look for that form too.
    SEEN.add(base64.b64encode(f"app:{secret}".encode()).decode())
    return secret


@pytest.fixture
def redirect_uri() -> str:
    return REDIRECT_URI
