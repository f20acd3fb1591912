"""Resilience and telemetry for every httpx client, sync and async, in one call.

Usage::

    from commtel.instrumentation.httpx import HTTPXInstrumentor

    HTTPXInstrumentor().instrument(policies={"hosts": {"api.example.com": {"platform": "example"}}})
    httpx.get("https://api.example.com/items")   # guarded, traced, measured
    HTTPXInstrumentor().uninstrument()            # plain httpx again

``opentelemetry-instrument python app.py`` does the same through the
``commtel-httpx`` entry point (switch it off with
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=commtel-httpx``).

``Client.send`` and ``AsyncClient.send`` are patched, so every request of every
client (``get``, ``post``, ``stream`` …) runs through the host's
:class:`~commtel.Guard`: retry( breaker( limiter( send ))) in an INTERNAL span, each
attempt a CLIENT span (stable HTTP semantic conventions) with ``traceparent``,
``baggage`` and ``X-Correlation-ID`` injected. Redirects and auth flows of one
attempt stay inside it. contrib's ``HTTPXClientInstrumentor`` patches the transports
below ``send``; commtel sets the HTTP suppression key around each attempt, so it stays
silent and each physical request has exactly one CLIENT span. When retries run out on
an HTTP status, the last response is returned as httpx would have.

Hooks: ``request_hook(span, RequestInfo)`` and ``response_hook(span, RequestInfo,
ResponseInfo)`` (plain functions, for sync and async clients alike).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import requires
from ._instrumentor import Answer, HttpCall, HttpInstrumentation, HttpInstrumentor
from ._package import _instruments_httpx


with requires("opentelemetry.instrumentation"):
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled


if TYPE_CHECKING:
    import httpx


__all__ = ["HTTPXInstrumentor"]


def _start(http: HttpInstrumentation, request: httpx.Request) -> HttpCall:
    call = http.call(request.method, str(request.url), request.url.host)
    timeout = call.timeout_s
    if timeout is not None:
        request.extensions["timeout"] = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    return call


def _send(wrapped: Any, instance: httpx.Client, args: Any, kwargs: Any, *, http: HttpInstrumentation) -> Any:  # noqa: ARG001 - wrapt's signature
    if not is_http_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    request: httpx.Request = args[0] if args else kwargs["request"]
    call = _start(http, request)

    def attempt() -> Answer:
        with call.attempt(request.headers) as span:
            response = wrapped(*args, **kwargs)
            retryable = call.answered(span, response.status_code, response.headers)
        call.feedback(response.status_code, response.headers)
        if retryable:
            response.read()
            response.close()
        return Answer(response.status_code, response.headers, response)

    return call.guard.call(attempt).response


async def _send_async(
    wrapped: Any,
    _instance: httpx.AsyncClient,
    args: Any,
    kwargs: Any,
    *,
    http: HttpInstrumentation,
) -> Any:
    if not is_http_instrumentation_enabled():
        return await wrapped(*args, **kwargs)
    request: httpx.Request = args[0] if args else kwargs["request"]
    call = _start(http, request)

    async def attempt() -> Answer:
        with call.attempt(request.headers) as span:
            response = await wrapped(*args, **kwargs)
            retryable = call.answered(span, response.status_code, response.headers)
        await call.afeedback(response.status_code, response.headers)
        if retryable:
            await response.aread()
            await response.aclose()
        return Answer(response.status_code, response.headers, response)

    return (await call.guard.acall(attempt)).response


class HTTPXInstrumentor(HttpInstrumentor):
    """Instrument httpx's ``Client`` and ``AsyncClient`` (see the module documentation).

    .. versionadded:: 0.1.0
    """

    _library = "httpx"
    _dependencies = _instruments_httpx
    _patches = (("httpx.Client", "send", _send), ("httpx.AsyncClient", "send", _send_async))
