"""HTTP client span logic shared by the httpx, requests and aiohttp instrumentors, written once.

Each physical request (each attempt of a guarded call) is one CLIENT span per
OpenTelemetry's stable HTTP semantic conventions: name ``{method}``,
``http.request.method``, ``url.full`` (credentials and secret query values
redacted), ``server.address``, ``server.port``, ``http.response.status_code``,
``error.type`` and, on retries, ``http.request.resend_count``; the headers named by
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_*`` (sanitized), and what the server
said about its rate limit (``commtel.ratelimit.remaining`` / ``.limit`` / ``.delay_s``).
The span is current while the library sends, with the contrib HTTP suppression key set,
so a contrib httpx/requests/aiohttp instrumentor that is also active stays silent: one
physical request, one CLIENT span. Outgoing headers get W3C ``traceparent``/``baggage``
per OpenTelemetry's propagators, and ``X-Correlation-ID`` (with the id in ``baggage``)
only for hosts whose policy says ``send_correlation``.

An :class:`HttpAttempt` is a plain (sync) context manager, so the sync and async
instrumentor drivers share it unchanged.
"""

from __future__ import annotations

import logging

from collections.abc import Callable, Mapping, MutableMapping
from types import TracebackType
from typing import NamedTuple
from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_REQUEST_RESEND_COUNT,
    HTTP_RESPONSE_STATUS_CODE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_FULL
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from typing_extensions import Self

from .. import _timing
from .._redaction import redact_url
from ..context._correlation import inject_headers
from ..ratelimit._feedback import parse_feedback
from ..telemetry._tracing import _context_attributes, record_exception
from ._http_settings import HttpSettings


__all__ = [
    "HttpAttempt",
    "HttpHooks",
    "HttpTelemetry",
    "RequestHook",
    "RequestInfo",
    "ResponseHook",
    "ResponseInfo",
    "redact_url",
]

_log = logging.getLogger("commtel.instrumentation")

_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Response headers that say something about the server's rate limit (lower-case prefixes).
_FEEDBACK_PREFIXES = ("retry-after", "ratelimit", "x-ratelimit")
# Longest server-requested wait recorded as is (the limiter's default max_server_wait_s).
_MAX_RECORDED_WAIT_S = 3600.0
# The old (pre-stable) HTTP client attribute names, for OTEL_SEMCONV_STABILITY_OPT_IN=http/dup.
_OLD_METHOD, _OLD_URL, _OLD_PEER_NAME, _OLD_PEER_PORT, _OLD_STATUS = (
    "http.method",
    "http.url",
    "net.peer.name",
    "net.peer.port",
    "http.status_code",
)


class RequestInfo(NamedTuple):
    """What a request hook sees of one attempt (stable across client libraries).

    Attributes:
        method: The HTTP method as sent.
        url: The full URL (not redacted: your hook, your responsibility).
        headers: The outgoing headers; a request hook may add to them.
        resend_count: 0 for the first attempt, then 1, 2 … for retries.

    .. versionadded:: 0.1.0
    """

    method: str
    url: str
    headers: MutableMapping[str, str]
    resend_count: int


class ResponseInfo(NamedTuple):
    """What a response hook sees of one answered attempt.

    .. versionadded:: 0.1.0
    """

    status_code: int
    headers: Mapping[str, str]


#: ``request_hook(span, request_info)``, called after the span starts, before sending.
RequestHook = Callable[[Span, RequestInfo], None]
#: ``response_hook(span, request_info, response_info)``, called before the span ends.
ResponseHook = Callable[[Span, RequestInfo, ResponseInfo], None]


class HttpHooks(NamedTuple):
    """The user's hooks of one instrumentor (either may be ``None``)."""

    request: RequestHook | None = None
    response: ResponseHook | None = None


class HttpTelemetry(NamedTuple):
    """What the attempts of one instrumentor share: its tracer, the user's hooks, the OTEL settings."""

    tracer: Tracer
    hooks: HttpHooks = HttpHooks()
    settings: HttpSettings = HttpSettings()


def _run_hook(hook: Callable[..., None], *args: object) -> None:
    # A failing user hook is logged and never breaks the request (contrib redis _execute_hook).
    try:
        hook(*args)
    except Exception:
        _log.exception("commtel HTTP hook %r failed", hook)


def normalized_method(method: str) -> str:
    """*method* upper-cased when it is a known HTTP method, else ``"_OTHER"`` (a bounded label value)."""
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "_OTHER"


def url_attributes(url: str) -> dict[str, object]:
    """``url.full`` (redacted), ``server.address`` and ``server.port`` of *url*."""
    attributes: dict[str, object] = {URL_FULL: redact_url(url)}
    parts = urlsplit(url)
    if parts.hostname:
        attributes[SERVER_ADDRESS] = parts.hostname
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    if port:
        attributes[SERVER_PORT] = port
    return attributes


def _request_attributes(
    method: str, target: Mapping[str, object], resend_count: int, settings: HttpSettings
) -> tuple[str, dict[str, object]]:
    attributes: dict[str, object] = _context_attributes()
    normalized = normalized_method(method)
    if normalized != "_OTHER":
        name = normalized
    else:
        name = "HTTP"
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = method
    attributes[HTTP_REQUEST_METHOD] = normalized
    attributes.update(target)
    if settings.old_semconv:
        attributes[_OLD_METHOD] = method.upper() if normalized != "_OTHER" else method
        for stable, old in ((URL_FULL, _OLD_URL), (SERVER_ADDRESS, _OLD_PEER_NAME), (SERVER_PORT, _OLD_PEER_PORT)):
            if stable in target:
                attributes[old] = target[stable]
    if resend_count:
        attributes[HTTP_REQUEST_RESEND_COUNT] = resend_count
    return name, attributes


def _record_feedback(span: Span, status: int, headers: Mapping[str, str]) -> None:
    """What the server said about its rate limit, as attributes of the attempt's span."""
    if status not in {429, 503} and not any(str(name).lower().startswith(_FEEDBACK_PREFIXES) for name in headers):
        return
    feedback = parse_feedback(status, headers, now_wall=_timing.wall(), max_wait_s=_MAX_RECORDED_WAIT_S)
    if feedback.remaining is not None:
        span.set_attribute("commtel.ratelimit.remaining", feedback.remaining)
    if feedback.limit is not None:
        span.set_attribute("commtel.ratelimit.limit", feedback.limit)
    if feedback.delay_s is not None:
        span.set_attribute("commtel.ratelimit.delay_s", feedback.delay_s)
        span.set_attribute("commtel.ratelimit.source", feedback.source)
        if feedback.clamped:
            span.set_attribute("commtel.ratelimit.clamped", True)  # noqa: FBT003 - an attribute value


class HttpAttempt:
    """One physical request as a CLIENT span: ``with HttpAttempt(...) as a: ...; a.answered(...)``.

    Entering starts the span, makes it current together with the contrib HTTP
    suppression key, runs the request hook and injects the propagation headers into
    *headers* (mutated in place). :meth:`answered` records the response; leaving
    records an exception if one escaped (kept in :attr:`error`), ends the span and
    restores the context.
    """

    __slots__ = ("_info", "_send_correlation", "_span", "_target", "_telemetry", "_token", "error")

    def __init__(
        self,
        telemetry: HttpTelemetry,
        method: str,
        url: str,
        headers: MutableMapping[str, str],
        *,
        resend_count: int = 0,
        send_correlation: bool = False,
        target: Mapping[str, object] | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._info = RequestInfo(method, url, headers, resend_count)
        # The URL's span attributes (url_attributes), when the caller has them already.
        self._target = target
        self._send_correlation = send_correlation
        self._span: Span = trace.INVALID_SPAN
        self._token: object | None = None
        #: The exception that escaped the library's send, if any.
        self.error: BaseException | None = None

    @property
    def span(self) -> Span:
        """The attempt's CLIENT span."""
        return self._span

    def __enter__(self) -> Self:
        info = self._info
        telemetry = self._telemetry
        target = self._target if self._target is not None else url_attributes(info.url)
        name, attributes = _request_attributes(info.method, target, info.resend_count, telemetry.settings)
        attributes.update(telemetry.settings.request_attributes(info.headers))
        span = self._span = telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)  # type: ignore[arg-type]
        ctx = context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, trace.set_span_in_context(span))  # noqa: FBT003 - contrib's key holds a bool
        self._token = context.attach(ctx)
        if telemetry.hooks.request is not None:
            _run_hook(telemetry.hooks.request, span, info)
        inject_headers(info.headers, correlation=self._send_correlation)
        return self

    def answered(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Record the response status (4xx/5xx mark the span as an error) and run the response hook."""
        span = self._span
        telemetry = self._telemetry
        if span.is_recording():
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status_code)
            if telemetry.settings.old_semconv:
                span.set_attribute(_OLD_STATUS, status_code)
            if status_code >= 400:
                span.set_attribute(ERROR_TYPE, str(status_code))
                span.set_status(Status(StatusCode.ERROR))
            captured = telemetry.settings.response_attributes(headers)
            if captured:
                span.set_attributes(captured)
            _record_feedback(span, status_code, headers)
        if telemetry.hooks.response is not None:
            _run_hook(telemetry.hooks.response, span, self._info, ResponseInfo(status_code, headers))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        self.error = exc
        try:
            if exc is not None and span.is_recording():
                span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
                record_exception(span, exc, escaped=True)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            span.end()
        finally:
            if self._token is not None:
                context.detach(self._token)  # type: ignore[arg-type]
                self._token = None
