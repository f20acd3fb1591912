"""What the httpx, requests and aiohttp instrumentors share: the contract and one request's life.

:class:`HttpInstrumentor` follows opentelemetry-contrib's contract (``BaseInstrumentor``,
``instrumentation_dependencies()``, ``wrap_function_wrapper`` with a ``partial``,
``unwrap`` in ``_uninstrument``); a subclass only names its library and its patches.
:class:`HttpCall` is one logical request: its policy scope and :class:`~commtel.Guard`,
and the bookkeeping of its attempts (CLIENT spans, resend count, limiter feedback).
The library modules add just the thin sync/async wrappers that call the library.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading

from collections.abc import Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from opentelemetry import trace
from wrapt import wrap_function_wrapper

from .._optional import requires
from .._version import version
from ._http import HttpAttempt, HttpHooks
from ._policies import HostPolicies, _Scope, configured_policies


with requires("opentelemetry.instrumentation"):
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
    from opentelemetry.instrumentation.utils import unwrap


__all__ = ["ENV_METRICS_PORT", "Answer", "HttpCall", "HttpInstrumentation", "HttpInstrumentor"]

_log = logging.getLogger("commtel.instrumentation")

#: With this set, the first instrumentor serves commtel's Prometheus metrics on that port.
ENV_METRICS_PORT = "COMMTEL_METRICS_PORT"
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"


class Answer(NamedTuple):
    """A response as the guard judges it: status and headers, whatever the library."""

    status_code: int
    headers: Mapping[str, str]
    response: Any


class HttpInstrumentation:
    """Everything an instrumentor's wrappers need, bound once per ``instrument()``."""

    __slots__ = ("hooks", "policies", "tracer")

    def __init__(self, tracer: trace.Tracer, policies: HostPolicies | None, hooks: HttpHooks) -> None:
        self.tracer = tracer
        # None: read the environment's configuration lazily, at the first request.
        self.policies = policies
        self.hooks = hooks

    def call(self, method: str, url: str, host: str | None) -> HttpCall:
        """Start one logical request to *url*."""
        policies = self.policies or configured_policies()
        return HttpCall(self, method.upper(), url, policies.for_host(host or ""))


class HttpCall:
    """One logical request: its scope's guard, and each attempt's CLIENT span and feedback."""

    __slots__ = ("_http", "guard", "method", "resends", "scope", "url")

    def __init__(self, http: HttpInstrumentation, method: str, url: str, scope: _Scope) -> None:
        self._http = http
        self.method = method
        self.url = url
        self.scope = scope
        self.guard = scope.guard(f"HTTP {method}", http_method=method)
        self.resends = 0

    @property
    def timeout_s(self) -> float | None:
        """The policy's per-attempt timeout, to hand to the client library (``None``: leave it)."""
        return self.scope.policy.timeout_s  # type: ignore[return-value]

    def attempt(self, headers: MutableMapping[str, str]) -> HttpAttempt:
        """The next attempt's span context manager; injects propagation headers into *headers*."""
        attempt = HttpAttempt(
            self._http.tracer, self._http.hooks, self.method, self.url, headers, resend_count=self.resends
        )
        self.resends += 1
        return attempt

    def answered(self, attempt: HttpAttempt, status: int, headers: Mapping[str, str]) -> Answer | None:
        """Record a response on *attempt*; returns it as an :class:`Answer` when the guard may retry it.

        A response that may be retried should be read and closed by the caller, so its
        connection goes back to the pool before the next attempt.
        """
        attempt.answered(status, headers)
        retry = self.guard.retry
        if retry is None or not retry.checks_results:
            return None
        answer = Answer(status, headers, None)
        return answer if retry.classifier.result(answer) is not None else None

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


def _resolve_policies(value: HostPolicies | Mapping[str, Any] | str | Path | None) -> HostPolicies | None:
    if value is None or isinstance(value, HostPolicies):
        return value
    if isinstance(value, str | Path):
        return HostPolicies.from_toml(value)
    return HostPolicies.from_mapping(value)


_env_lock = threading.Lock()
_env_done = False


def _setup_from_env() -> None:
    """Under ``opentelemetry-instrument`` with no SDK configurator: export and serve metrics per env.

    Runs once per process. Tracing is configured (``commtel.configure()``, OTLP from
    the standard variables) only when ``OTEL_TRACES_EXPORTER`` asks for export and no
    TracerProvider was installed; metrics are served when ``COMMTEL_METRICS_PORT`` is set.
    """
    global _env_done  # noqa: PLW0603
    with _env_lock:
        if _env_done:
            return
        _env_done = True
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter and exporter != "none" and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        from ..telemetry._tracing import configure

        configure()
    port = os.environ.get(ENV_METRICS_PORT)
    if port:
        from ..telemetry._exposition import start_http_server

        try:
            start_http_server(int(port))
        except (OSError, ValueError):
            _log.exception("cannot serve commtel metrics on %s=%r", ENV_METRICS_PORT, port)


class HttpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of commtel's HTTP client instrumentors (see the library modules for usage).

    ``instrument()`` accepts, besides contrib's ``tracer_provider``:

    * ``policies``: a :class:`~commtel.HostPolicies`, its mapping form, or a TOML file path
      (default: ``$COMMTEL_POLICIES_FILE`` / ``$COMMTEL_POLICIES``, else commtel's defaults);
    * ``request_hook(span, RequestInfo)`` and ``response_hook(span, RequestInfo, ResponseInfo)``,
      called for every attempt; a hook that raises is logged, never propagated.

    .. versionadded:: 0.1.0
    """

    #: The module to patch (imported lazily, in ``instrument()``).
    _library: ClassVar[str]
    _dependencies: ClassVar[tuple[str, ...]]
    #: ``(dotted owner, attribute, wrapper)``; each wrapper takes ``http=`` by keyword.
    _patches: ClassVar[tuple[tuple[str, str, Callable[..., Any]], ...]]

    def instrumentation_dependencies(self) -> Collection[str]:
        """The client library this instrumentor needs (checked by ``opentelemetry-instrument``)."""
        return self._dependencies

    def _instrument(self, **kwargs: Any) -> None:
        # ModuleNotFoundError here makes opentelemetry-instrument skip just this instrumentor.
        importlib.import_module(self._library)

        tracer = trace.get_tracer(
            type(self).__module__, version(), kwargs.get("tracer_provider"), schema_url=_SCHEMA_URL
        )
        http = HttpInstrumentation(
            tracer,
            _resolve_policies(kwargs.get("policies")),
            HttpHooks(kwargs.get("request_hook"), kwargs.get("response_hook")),
        )
        for owner, attribute, wrapper in self._patches:
            module, _, cls = owner.rpartition(".")
            wrap_function_wrapper(module, f"{cls}.{attribute}", functools.partial(wrapper, http=http))
        _setup_from_env()

    def _uninstrument(self, **kwargs: Any) -> None:  # noqa: ARG002 - contrib's signature
        for owner, attribute, _ in self._patches:
            unwrap(owner, attribute)
