"""Resilience and telemetry for every requests call, in one call.

Usage::

    from commtel.instrumentation.requests import RequestsInstrumentor

    RequestsInstrumentor().instrument(policies="policies.toml")
    requests.get("https://api.example.com/items")   # guarded, traced, measured
    RequestsInstrumentor().uninstrument()

``opentelemetry-instrument`` loads it as ``commtel-requests``; without policies it only
observes. A request commtel refuses (open breaker, limiter) raises an error that is both
the commtel error and a ``requests.ConnectionError`` (so a ``RequestException``).

``Session.request`` is patched (``requests.get`` and friends go through it): each
call runs through the host's :class:`~commtel.Guard` and every attempt re-prepares the
request (session headers, auth, cookies, body) as one CLIENT span. contrib's
``RequestsInstrumentor`` patches ``Session.send`` below it and is silenced by the
HTTP suppression key around each attempt: one physical request, one CLIENT span.
Calling ``Session.send`` with a prepared request yourself bypasses commtel.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._optional import requires
from ._instrumentor import Answer, HttpInstrumentation, HttpInstrumentor
from ._package import _instruments_requests


with requires("opentelemetry.instrumentation"):
    from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled


if TYPE_CHECKING:
    import requests


__all__ = ["RequestsInstrumentor"]

# Session.request's parameters after method and url, in positional order.
_POSITIONAL = (
    "params",
    "data",
    "headers",
    "cookies",
    "files",
    "auth",
    "timeout",
    "allow_redirects",
    "proxies",
    "hooks",
    "stream",
    "verify",
    "cert",
    "json",
)


def _arguments(method: str, url: Any, *args: Any, **kwargs: Any) -> tuple[str, str, dict[str, Any]]:
    kwargs.update(zip(_POSITIONAL, args, strict=False))
    return method, str(url), kwargs


def _request(wrapped: Any, instance: requests.Session, args: Any, kwargs: Any, *, http: HttpInstrumentation) -> Any:  # noqa: ARG001 - wrapt's signature
    if not is_http_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    from requests.models import PreparedRequest
    from requests.structures import CaseInsensitiveDict

    method, url, options = _arguments(*args, **kwargs)
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, options.get("params"))
    except Exception:  # requests raises the same error again below, where the caller expects it
        prepared.url = url
    full_url = prepared.url or url
    call = http.call(method, full_url, urlsplit(full_url).hostname)
    if call is None:
        return wrapped(*args, **kwargs)
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(options.get("headers") or {})
    options["headers"] = headers
    if call.timeout_s is not None:
        options["timeout"] = call.timeout_s

    def attempt() -> Answer:
        with call.attempt(headers) as sent:
            response = wrapped(method, url, **options)
            retryable = call.answered(sent, response.status_code, response.headers, response)
        call.feedback(response.status_code, response.headers)
        if retryable:
            _ = response.content
            response.close()
        return call.answer  # type: ignore[return-value]

    return call.run(attempt)


class RequestsInstrumentor(HttpInstrumentor):
    """Instrument requests' ``Session.request`` (see the module documentation).

    .. versionadded:: 0.1.0
    """

    _library = "requests"
    _dependencies = _instruments_requests
    _env_name = "REQUESTS"
    _error_base = ("requests", "ConnectionError")
    _patches = (("requests.Session", "request", _request),)
