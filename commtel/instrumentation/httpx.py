"""Resilience and telemetry for every httpx client, sync and async, in one call.

Usage::

    from commtel.instrumentation.httpx import HTTPXInstrumentor

    HTTPXInstrumentor().instrument(policies={"hosts": {"api.example.com": {"platform": "example"}}})
    httpx.get("https://api.example.com/items")   # guarded, traced, measured
    HTTPXInstrumentor().uninstrument()            # plain httpx again

``opentelemetry-instrument python app.py`` does the same through the
``commtel-httpx`` entry point (switch it off with
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=commtel-httpx``); without policies it only
observes.

``Client.send`` and ``AsyncClient.send`` are patched, so every request of every
client (``get``, ``post``, ``stream`` …) runs through the host's
:class:`~commtel.Guard`: retry( breaker( limiter( send ))) in an INTERNAL span, each
attempt a CLIENT span (stable HTTP semantic conventions) with ``traceparent`` and
``baggage`` injected. Redirects and auth flows of one attempt stay inside it.
contrib's ``HTTPXClientInstrumentor`` patches the transports below ``send``; commtel
sets the HTTP suppression key around each attempt, so it stays silent and each
physical request has exactly one CLIENT span. When retries run out on an HTTP status,
the last response is returned as httpx would have. A request commtel refuses (open
breaker, limiter) raises an error that is both the commtel error and an
``httpx.TransportError``.

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


def _start(http: HttpInstrumentation, request: httpx.Request) -> HttpCall | None:
    call = http.call(request.method, str(request.url), request.url.host)
    if call is not None and call.timeout_s is not None:
        timeout = call.timeout_s
        request.extensions["timeout"] = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    return call


def _send(wrapped: Any, instance: httpx.Client, args: Any, kwargs: Any, *, http: HttpInstrumentation) -> Any:  # noqa: ARG001 - wrapt's signature
    if not is_http_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    request: httpx.Request = args[0] if args else kwargs["request"]
    call = _start(http, request)
    if call is None:
        return wrapped(*args, **kwargs)

    def attempt() -> Answer:
        with call.attempt(request.headers) as sent:
            response = wrapped(*args, **kwargs)
            retryable = call.answered(sent, response.status_code, response.headers, response)
        call.feedback(response.status_code, response.headers)
        if retryable:
            response.read()
            response.close()
        return call.answer  # type: ignore[return-value]

    return call.run(attempt, request=request)


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
    if call is None:
        return await wrapped(*args, **kwargs)

    async def attempt() -> Answer:
        with call.attempt(request.headers) as sent:
            response = await wrapped(*args, **kwargs)
            retryable = call.answered(sent, response.status_code, response.headers, response)
        await call.afeedback(response.status_code, response.headers)
        if retryable:
            await response.aread()
            await response.aclose()
        return call.answer  # type: ignore[return-value]

    return await call.arun(attempt, request=request)


class HTTPXInstrumentor(HttpInstrumentor):
    """Instrument httpx's ``Client`` and ``AsyncClient`` (see the module documentation).

    .. versionadded:: 0.1.0
    """

    _library = "httpx"
    _dependencies = _instruments_httpx
    _env_name = "HTTPX"
    _error_base = ("httpx", "TransportError")
    _patches = (("httpx.Client", "send", _send), ("httpx.AsyncClient", "send", _send_async))
