"""What the httpx, requests and aiohttp instrumentors share: the contract and one request's life.

:class:`HttpInstrumentor` follows opentelemetry-contrib's contract (``BaseInstrumentor``,
``instrumentation_dependencies()``, ``wrap_function_wrapper`` with a ``partial``,
``unwrap`` in ``_uninstrument``); a subclass only names its library, its error class
and its patches. :class:`HttpCall` is one logical request: its policy scope and
:class:`~commtel.Guard`, its attempts (CLIENT spans, resend count, limiter feedback),
the INTERNAL span's description, and what the program gets in the end — the last
response or exception exactly as the library gave it, or a commtel rejection that is
also one of the library's errors. The library modules add just the thin sync/async
wrappers that call the library.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading

from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, NoReturn

from opentelemetry import trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Span, Status, StatusCode
from wrapt import wrap_function_wrapper

from .._exceptions import CommtelError, ConfigurationError, RetryBudgetExhausted, RetryExhausted
from .._optional import requires
from .._version import version
from ..context._correlation import begin_operation, end_operation
from ._http import HttpAttempt, HttpHooks, HttpTelemetry, normalized_method, url_attributes
from ._http_settings import HttpSettings
from ._policies import HostPolicies, _Scope, configured_policies
from ._rejections import ClientErrors, is_rejection


with requires("opentelemetry.instrumentation"):
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
    from opentelemetry.instrumentation.utils import unwrap


__all__ = ["ENV_METRICS_ADDR", "ENV_METRICS_PORT", "Answer", "HttpCall", "HttpInstrumentation", "HttpInstrumentor"]

_log = logging.getLogger("commtel.instrumentation")

#: With this set, the first instrumentor serves commtel's Prometheus metrics on that port.
ENV_METRICS_PORT = "COMMTEL_METRICS_PORT"
#: The address that metrics server binds (default ``127.0.0.1``; ``0.0.0.0`` for every interface).
ENV_METRICS_ADDR = "COMMTEL_METRICS_ADDR"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"


class Answer(NamedTuple):
    """A response as the guard judges it: status and headers, whatever the library."""

    status_code: int
    headers: Mapping[str, str]
    response: Any


class HttpInstrumentation:
    """Everything an instrumentor's wrappers need, bound once per ``instrument()``."""

    __slots__ = ("errors", "policies", "telemetry")

    def __init__(self, telemetry: HttpTelemetry, policies: HostPolicies, errors: ClientErrors) -> None:
        self.telemetry = telemetry
        self.policies = policies
        self.errors = errors

    def call(self, method: str, url: str, host: str | None) -> HttpCall | None:
        """Start one logical request to *url*; ``None`` when its URL is excluded (leave it alone)."""
        if self.telemetry.settings.excludes(url):
            return None
        return HttpCall(self, method, url, self.policies.for_host(host or ""))


class HttpCall:
    """One logical request: its scope's guard, each attempt's CLIENT span and feedback, and its outcome."""

    __slots__ = (
        "_http",
        "_last",
        "_operation",
        "_outer",
        "_target",
        "answer",
        "guard",
        "method",
        "resends",
        "scope",
        "url",
    )

    def __init__(self, http: HttpInstrumentation, method: str, url: str, scope: _Scope) -> None:
        self._http = http
        self.method = method
        self.url = url
        self.scope = scope
        normalized = normalized_method(method)
        self.guard = scope.guard(f"HTTP {normalized}", http_method=normalized)
        self.resends = 0
        #: The last attempt's answer, if it got one.
        self.answer: Answer | None = None
        self._last: HttpAttempt | None = None
        self._outer: Span = trace.INVALID_SPAN
        self._operation: Span | None = None
        self._target: dict[str, object] | None = None  # the URL's span attributes, made once

    @property
    def timeout_s(self) -> float | None:
        """The policy's per-attempt timeout, to hand to the client library (``None``: leave it)."""
        return self.scope.policy.timeout_s  # type: ignore[return-value]

    def attempt(self, headers: MutableMapping[str, str]) -> HttpAttempt:
        """The next attempt's span context manager; injects propagation headers into *headers*."""
        if self._target is None:
            self._target = url_attributes(self.url)
            self._describe_operation(self._target)
        attempt = self._last = HttpAttempt(
            self._http.telemetry,
            self.method,
            self.url,
            headers,
            resend_count=self.resends,
            send_correlation=self.scope.send_correlation,
            target=self._target,
        )
        self.resends += 1
        return attempt

    def _describe_operation(self, target: Mapping[str, object]) -> None:
        # The guard's INTERNAL span is current now, unless it made none (no SDK): then it is the caller's.
        span = trace.get_current_span()
        if span is self._outer or not span.is_recording():
            return
        self._operation = span
        span.set_attributes({HTTP_REQUEST_METHOD: normalized_method(self.method), **target})  # type: ignore[dict-item]

    def answered(self, attempt: HttpAttempt, status: int, headers: Mapping[str, str], response: Any) -> bool:
        """Record a response on *attempt* (and the operation); returns whether the guard may retry it.

        A response that may be retried should be read and closed by the caller, so its
        connection goes back to the pool before the next attempt. One that may not is
        final: a 5xx then makes the operation's span an error.
        """
        attempt.answered(status, headers)
        answer = self.answer = Answer(status, headers, response)
        retry = self.guard.retry
        retryable = retry is not None and retry.checks_results and retry.classifier.result(answer) is not None
        operation = self._operation
        if operation is not None:
            operation.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
            if status >= 500 and not retryable:
                operation.set_attribute(ERROR_TYPE, str(status))
                operation.set_status(Status(StatusCode.ERROR))
        return retryable

    def feedback(self, status: int, headers: Mapping[str, str]) -> None:
        """Tell the scope's limiter how the server answered (Retry-After, RateLimit headers)."""
        limiter = self.scope.limiter
        if limiter is not None:
            limiter.feedback("default", status, headers, platform=self.scope.platform or None)

    async def afeedback(self, status: int, headers: Mapping[str, str]) -> None:
        """:meth:`feedback` for asyncio (awaits a shared backend such as Redis)."""
        limiter = self.scope.limiter
        if limiter is not None:
            await limiter.afeedback("default", status, headers, platform=self.scope.platform or None)

    def run(self, attempt: Callable[[], Answer], **context: Any) -> Any:
        """Send through the guard; the program's outcome (see :meth:`_settle`). *context* goes to rejections."""
        token = begin_operation()
        self._outer = trace.get_current_span()
        try:
            return self.guard.call(attempt).response
        except CommtelError as exc:
            return self._settle(exc, context)
        finally:
            end_operation(token)

    async def arun(self, attempt: Callable[[], Awaitable[Answer]], **context: Any) -> Any:
        """:meth:`run` for asyncio."""
        token = begin_operation()
        self._outer = trace.get_current_span()
        try:
            return (await self.guard.acall(attempt)).response
        except CommtelError as exc:
            return self._settle(exc, context)
        finally:
            end_operation(token)

    def _settle(self, exc: CommtelError, context: Mapping[str, Any]) -> Any:
        """What the program gets when the guard raised *exc* (called in its ``except`` block).

        The library's own errors pass unchanged. When retries stop (run out, or the
        retry budget says no), the last response is returned — or the last exception
        raised — exactly as the library gave it. A rejection (open breaker, limiter,
        shared-state backend) becomes an error of the library too.
        """
        last = self._last
        if last is not None and exc is last.error:
            raise exc
        if isinstance(exc, RetryExhausted | RetryBudgetExhausted):
            if last is not None and last.error is None and self.answer is not None:
                return self.answer.response
            if last is not None and last.error is not None:
                _raise(last.error)
        if is_rejection(exc):
            _raise(self._http.errors.convert(exc, **context))
        raise exc


def _raise(error: BaseException) -> NoReturn:
    raise error from error.__cause__


def _resolve_policies(value: HostPolicies | Mapping[str, Any] | str | Path | None) -> HostPolicies:
    if value is None:
        return configured_policies()
    if isinstance(value, HostPolicies):
        return value
    if isinstance(value, str | Path):
        return HostPolicies.from_toml(value)
    return HostPolicies.from_mapping(value)


@functools.cache
def _client_errors(base: type[Exception], module: str) -> ClientErrors:
    # One set of classes per library for the whole process: instrumenting again keeps them.
    return ClientErrors(base, module)


def _metrics_endpoint(environ: Mapping[str, str]) -> tuple[str, int] | None:
    """``(address, port)`` to serve metrics on from the environment, or ``None``."""
    raw = environ.get(ENV_METRICS_PORT, "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        msg = f"{ENV_METRICS_PORT}={raw!r} must be a port number (0-65535)"
        raise ConfigurationError(msg)
    return environ.get(ENV_METRICS_ADDR, "").strip() or "127.0.0.1", port


def _load_telemetry() -> None:
    """Load now what the first request would (the telemetry listeners, the metrics), so it costs what the next does."""
    from .. import _events
    from ..telemetry._metrics import get_metrics

    _events.active_listeners()
    get_metrics()


_env_lock = threading.Lock()
_env_done = False


def _setup_from_env(metrics: tuple[str, int] | None) -> None:
    """Under ``opentelemetry-instrument`` with no SDK configurator: export and serve metrics per env.

    Runs once per process. Tracing is configured (``commtel.configure()``, which honours
    ``OTEL_TRACES_EXPORTER``) only when ``OTEL_TRACES_EXPORTER`` names an exporter and no
    TracerProvider was installed; metrics are served when ``COMMTEL_METRICS_PORT`` is set,
    on ``COMMTEL_METRICS_ADDR``. A port that cannot be bound is logged, never raised.
    """
    global _env_done  # noqa: PLW0603
    with _env_lock:
        if _env_done:
            return
        _env_done = True
    exporters = {name.strip().lower() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")} - {"", "none"}
    if exporters and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        from ..telemetry._tracing import configure

        configure()
    if metrics is not None:
        from ..telemetry._exposition import start_http_server

        address, port = metrics
        try:
            start_http_server(port, address)
        except OSError:
            _log.exception(
                "cannot serve commtel metrics on %s:%s (%s, %s)", address, port, ENV_METRICS_ADDR, ENV_METRICS_PORT
            )


class HttpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of commtel's HTTP client instrumentors (see the library modules for usage).

    ``instrument()`` accepts, besides contrib's ``tracer_provider``:

    * ``policies``: a :class:`~commtel.HostPolicies`, its mapping form, or a TOML file path
      (default: ``$COMMTEL_POLICIES_FILE`` / ``$COMMTEL_POLICIES``, else observe only);
    * ``request_hook(span, RequestInfo)`` and ``response_hook(span, RequestInfo, ResponseInfo)``,
      called for every attempt; a hook that raises is logged, never propagated;
    * ``excluded_urls``: comma-separated regular expressions of URLs to leave alone
      (default: contrib's ``OTEL_PYTHON_<LIBRARY>_EXCLUDED_URLS`` / ``OTEL_PYTHON_EXCLUDED_URLS``).

    Configuration is read and validated here: a bad policy or variable raises
    :class:`~commtel.ConfigurationError` before anything is patched.

    .. versionadded:: 0.1.0
    """

    #: The module to patch (imported lazily, in ``instrument()``).
    _library: ClassVar[str]
    _dependencies: ClassVar[tuple[str, ...]]
    #: contrib's name of the library in ``OTEL_PYTHON_<NAME>_EXCLUDED_URLS``.
    _env_name: ClassVar[str]
    #: ``(module, class)`` of the library error that commtel's rejections also are.
    _error_base: ClassVar[tuple[str, str]]
    #: ``(dotted owner, attribute, wrapper)``; each wrapper takes ``http=`` by keyword.
    _patches: ClassVar[tuple[tuple[str, str, Callable[..., Any]], ...]]

    def instrumentation_dependencies(self) -> Collection[str]:
        """The client library this instrumentor needs (checked by ``opentelemetry-instrument``)."""
        return self._dependencies

    def _instrument(self, **kwargs: Any) -> None:
        # ModuleNotFoundError here makes opentelemetry-instrument skip just this instrumentor.
        importlib.import_module(self._library)

        module, name = self._error_base
        settings = HttpSettings.from_env(self._env_name, excluded_urls=kwargs.get("excluded_urls"))
        policies = _resolve_policies(kwargs.get("policies"))
        metrics = _metrics_endpoint(os.environ)
        tracer = trace.get_tracer(
            type(self).__module__, version(), kwargs.get("tracer_provider"), schema_url=_SCHEMA_URL
        )
        http = HttpInstrumentation(
            HttpTelemetry(tracer, HttpHooks(kwargs.get("request_hook"), kwargs.get("response_hook")), settings),
            policies,
            _client_errors(getattr(importlib.import_module(module), name), type(self).__module__),
        )
        _load_telemetry()
        for owner, attribute, wrapper in self._patches:
            patched_module, _, cls = owner.rpartition(".")
            wrap_function_wrapper(patched_module, f"{cls}.{attribute}", functools.partial(wrapper, http=http))
        _setup_from_env(metrics)

    def _uninstrument(self, **kwargs: Any) -> None:  # noqa: ARG002 - contrib's signature
        for owner, attribute, _ in self._patches:
            unwrap(owner, attribute)
