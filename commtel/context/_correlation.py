"""Correlation id and platform context on contextvars.

The correlation id follows the work: through threads (with :func:`run_in_context`
or :class:`ContextExecutor`), asyncio tasks (contextvars are copied per task), W3C
baggage and the ``X-Correlation-ID`` header of outgoing requests. Incoming requests
set it with :class:`CorrelationMiddleware` (WSGI) or :class:`ASGICorrelationMiddleware`.

Outside :func:`correlation_context` the correlation id is the id of the current trace,
so all the work of one traced operation shares one; with no trace either, each
top-level operation commtel runs (an instrumented HTTP request or method) gets a fresh
one for its duration (:func:`begin_operation`). Nothing is ever stored on the root
context: two requests of a program never share an id by accident.
"""

from __future__ import annotations

import contextvars
import uuid

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from .. import _validation as check
from ._telemetry import attach_baggage, current_trace_id, detach, extract_baggage, inject


__all__ = [
    "CORRELATION_HEADER",
    "ASGICorrelationMiddleware",
    "ContextExecutor",
    "CorrelationMiddleware",
    "begin_operation",
    "correlation_context",
    "end_operation",
    "extract_correlation_id",
    "get_correlation_id",
    "inject_headers",
    "new_correlation_id",
    "peek_correlation_id",
    "run_in_context",
    "set_correlation_id",
]

CORRELATION_HEADER = "X-Correlation-ID"
_MAX_ID_LENGTH = 128

_P = ParamSpec("_P")
_T = TypeVar("_T")

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("commtel_correlation_id", default=None)


def new_correlation_id() -> str:
    """A fresh random correlation id (32 hex characters).

    .. versionadded:: 0.1.0
    """
    return uuid.uuid4().hex


def peek_correlation_id() -> str | None:
    """The active correlation id without making one: the context's, else the current trace's id, else ``None``."""
    value = _correlation_id.get()
    return current_trace_id() if value is None else value


def get_correlation_id() -> str:
    """The current correlation id.

    That of the enclosing :func:`correlation_context` (or middleware), else the id of
    the current trace, else a fresh one, which is not stored: use
    :func:`correlation_context` to keep one id across several operations.

    .. versionadded:: 0.1.0
    """
    return peek_correlation_id() or new_correlation_id()


def begin_operation() -> contextvars.Token[str | None] | None:
    """Give a top-level operation a fresh correlation id unless one is active (a context's or a trace's).

    Returns the token for :func:`end_operation` (``None`` when nothing was set). What
    commtel does around each operation it runs, so that all its spans, log lines and
    outgoing headers share one id.
    """
    if peek_correlation_id() is not None:
        return None
    return _correlation_id.set(new_correlation_id())


def end_operation(token: contextvars.Token[str | None] | None) -> None:
    """Undo :func:`begin_operation`."""
    if token is not None:
        _correlation_id.reset(token)


def _clean(value: str) -> str:
    value = value.strip()
    if not value or len(value) > _MAX_ID_LENGTH or not value.isprintable():
        msg = f"correlation id must be 1-{_MAX_ID_LENGTH} printable characters, got {value[:40]!r}"
        raise ValueError(msg)
    return value


def set_correlation_id(value: str) -> contextvars.Token[str | None]:
    """Set the correlation id of the current context; returns a token for ``reset``.

    .. versionadded:: 0.1.0
    """
    return _correlation_id.set(_clean(value))


@contextmanager
def correlation_context(value: str | None = None) -> Iterator[str]:
    """Run the block under correlation id *value* (fresh when ``None``), also in baggage.

    .. versionadded:: 0.1.0
    """
    cid = new_correlation_id() if value is None else _clean(value)
    token = _correlation_id.set(cid)
    otel_token = attach_baggage(cid)
    try:
        yield cid
    finally:
        detach(otel_token)
        _correlation_id.reset(token)


def inject_headers(headers: MutableMapping[str, str], *, correlation: bool = True) -> MutableMapping[str, str]:
    """Add W3C ``traceparent`` and ``baggage`` (per ``OTEL_PROPAGATORS``), and ``X-Correlation-ID``, to *headers*.

    Args:
        headers: The outgoing headers (mutated).
        correlation: Send the correlation id (``X-Correlation-ID`` and the ``correlation_id``
            baggage entry); ``False`` leaves both out, also when a
            :func:`correlation_context` put the id into the context's baggage.

    .. versionadded:: 0.1.0
    """
    if correlation:
        cid = get_correlation_id()
        headers[CORRELATION_HEADER] = cid
        inject(headers, cid)
    else:
        inject(headers, None)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def extract_correlation_id(headers: Mapping[str, str]) -> str | None:
    """Read a correlation id from ``X-Correlation-ID`` or W3C baggage; ``None`` if absent or invalid.

    .. versionadded:: 0.1.0
    """
    value = _header(headers, CORRELATION_HEADER)
    if value is None:
        value = extract_baggage(headers)
    if value is None:
        return None
    try:
        return _clean(value)
    except ValueError:
        return None


def run_in_context(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Wrap *fn* so it runs in a copy of the caller's context (correlation, platform, span).

    .. versionadded:: 0.1.0
    """
    ctx = contextvars.copy_context()

    def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return ctx.copy().run(fn, *args, **kwargs)

    return call


class ContextExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the submitter's context.

    .. versionadded:: 0.1.0
    """

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)


_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CorrelationMiddleware:
    """WSGI middleware: take the correlation id from the request (or make one) and echo it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, app: _WSGIApp) -> None:
        self.app: _WSGIApp = check.callable_(app, "app", owner="CorrelationMiddleware")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-"): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and isinstance(value, str)
        }
        with correlation_context(extract_correlation_id(headers)) as cid:

            def start(status: str, response_headers: list[tuple[str, str]], *args: Any) -> Any:
                return start_response(status, [*response_headers, (CORRELATION_HEADER, cid)], *args)

            return self.app(environ, start)


class ASGICorrelationMiddleware:
    """ASGI middleware: take the correlation id from the request (or make one) and echo it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app: Callable[..., Any] = check.callable_(app, "app", owner="ASGICorrelationMiddleware")

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        with correlation_context(extract_correlation_id(headers)) as cid:

            async def send_with_id(message: dict[str, Any]) -> None:
                if message.get("type") == "http.response.start":
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (CORRELATION_HEADER.lower().encode(), cid.encode())],
                    }
                await send(message)

            await self.app(scope, receive, send_with_id)
