"""OAuth test fixtures: the authlib authorization server, and a secrets scan after every test.

Every test in this directory ends with a scan of what it exported — spans (both
before and after the redacting exporter), every metric sample of the test's
registry, and every log line (commtel's JSON lines and the raw records) — for
every secret the authorization server saw or issued and every secret a test
added to ``seen_secrets``. None may appear.
"""

from __future__ import annotations

import io
import logging
import secrets

from collections.abc import Iterator

import pytest

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from prometheus_client import CollectorRegistry, generate_latest

import commtel

from commtel.policies._oauth_providers import OAuthProvider
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


@pytest.fixture(autouse=True)
def _no_secret_leaves(registry: CollectorRegistry, spans) -> Iterator[io.StringIO]:  # noqa: ANN001
    """Scan every span, metric sample and log line of the test for secrets."""
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
    try:
        yield stream
    finally:
        _RAW.active = False
        root.removeHandler(raw)
        for handler in list(_logging._installed):
            root.removeHandler(handler)
        _logging._installed.clear()
        root.setLevel(previous_level)
        server_log.setLevel(server_level)
    texts = {
        "raw span": "\n".join(span.to_json() for span in _RAW.spans),
        "exported span": "\n".join(span.to_json() for span in spans.get_finished_spans()),
        "metric sample": generate_latest(registry).decode(),
        "json log line": stream.getvalue(),
        "raw log record": "\n".join(raw.lines),
    }
    for where, text in texts.items():
        leaked = [s for s in SEEN if s in text]
        assert not leaked, f"{len(leaked)} secret(s) found in a {where}"


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
        name="testauth", authorize_url=f"{base}/authorize", token_url=f"{base}/token",
        revocation_url=f"{base}/revoke", scopes=("read",),
    )


@pytest.fixture
def client_secret(authserver: AuthServer) -> str:
    """A confidential client ``app`` registered with a fresh random secret."""
    secret = "cs-" + secrets.token_urlsafe(24)
    authserver.register_client("app", secret)
    return secret


@pytest.fixture
def redirect_uri() -> str:
    return REDIRECT_URI
