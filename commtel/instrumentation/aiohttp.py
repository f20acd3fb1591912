"""Resilience and telemetry for every aiohttp ``ClientSession``, in one call.

Usage::

    from commtel.instrumentation.aiohttp import AioHttpInstrumentor

    AioHttpInstrumentor().instrument()
    async with aiohttp.ClientSession() as session:
        async with session.get("https://api.example.com/items") as response: ...
    AioHttpInstrumentor().uninstrument()

``opentelemetry-instrument`` loads it as ``commtel-aiohttp``; without policies it only
observes. A request commtel refuses (open breaker, limiter) raises an error that is both
the commtel error and an ``aiohttp.ClientConnectionError`` (so a ``ClientError``).

``ClientSession._request`` (behind ``get``, ``post``, ``request`` …) is patched, because
retrying needs to own the call; aiohttp's ``TraceConfig`` can only watch. Each
attempt is one CLIENT span, redirects included. contrib's ``AioHttpClientInstrumentor``
traces through a ``TraceConfig`` whose callbacks run inside the attempt, where the
HTTP suppression key is set: one physical request, one CLIENT span.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import requires
from ._instrumentor import Answer, HttpInstrumentation, HttpInstrumentor
from ._package import _instruments_aiohttp


with requires("opentelemetry.instrumentation"):
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled


if TYPE_CHECKING:
    import aiohttp


__all__ = ["AioHttpInstrumentor"]


async def _request(
    wrapped: Any, instance: aiohttp.ClientSession, args: Any, kwargs: Any, *, http: HttpInstrumentation
) -> Any:
    if not is_http_instrumentation_enabled():
        return await wrapped(*args, **kwargs)
    import aiohttp
    import multidict

    method = args[0] if args else kwargs["method"]
    str_or_url = args[1] if len(args) > 1 else kwargs["str_or_url"]
    url = instance._build_url(str_or_url)
    if kwargs.get("params"):
        url = url.extend_query(kwargs["params"])
    call = http.call(method, str(url), url.host)
    if call is None:
        return await wrapped(*args, **kwargs)
    headers: multidict.CIMultiDict[str] = multidict.CIMultiDict(kwargs.get("headers") or {})
    kwargs["headers"] = headers
    if call.timeout_s is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=call.timeout_s)

    async def attempt() -> Answer:
        with call.attempt(headers) as sent:
            response = await wrapped(*args, **kwargs)
            retryable = call.answered(sent, response.status, response.headers, response)
        await call.afeedback(response.status, response.headers)
        if retryable:
            await response.read()
            response.release()
        return call.answer  # type: ignore[return-value]

    return await call.arun(attempt)


class AioHttpInstrumentor(HttpInstrumentor):
    """Instrument aiohttp's ``ClientSession`` (see the module documentation).

    .. versionadded:: 0.1.0
    """

    _library = "aiohttp"
    _dependencies = _instruments_aiohttp
    _env_name = "AIOHTTP_CLIENT"
    _error_base = ("aiohttp", "ClientConnectionError")
    _patches = (("aiohttp.ClientSession", "_request", _request),)
