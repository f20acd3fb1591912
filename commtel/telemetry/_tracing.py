"""Tracing set-up: ``configure()``/``shutdown()``, commtel's tracer and span helpers.

``configure`` installs an SDK TracerProvider only when the application has not
installed one itself, and exports only when asked (arguments, ``OTEL_TRACES_EXPORTER``
or the standard ``OTEL_EXPORTER_OTLP_*`` variables). Exporters are wrapped so that no
secret leaves in a span, and every span gets ``commtel.correlation_id``.

Only the OpenTelemetry API is imported here; the SDK (:mod:`._export`) loads in
``configure()``, so importing commtel never pays for it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from .. import _validation as check
from .._redaction import exception_attributes, redact_text
from .._version import version
from ..context._correlation import peek_correlation_id
from ..context._platform import get_platform_context


if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter


__all__ = [
    "CORRELATION_ATTRIBUTE",
    "TelemetryConfig",
    "configure",
    "get_tracer",
    "record_exception",
    "recording_span",
    "shutdown",
    "start_span",
]

CORRELATION_ATTRIBUTE = "commtel.correlation_id"
_log = logging.getLogger("commtel.telemetry")


_tracer: trace.Tracer | None = None


def get_tracer() -> trace.Tracer:
    """commtel's tracer (a proxy until a TracerProvider is installed, then the real one)."""
    global _tracer  # noqa: PLW0603
    if _tracer is None:
        _tracer = trace.get_tracer("commtel", version())
    return _tracer


def recording_span() -> Span | None:
    """The current span if it records, else ``None``: telemetry handlers build event attributes only then."""
    span = trace.get_current_span()
    return span if span.is_recording() else None


def _context_attributes(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``commtel.correlation_id`` (when one is active) and the platform context's attributes, then *extra* (which wins).

    With no correlation context and no current trace the id is left out: a span that
    starts a trace gets its own trace id from the ``CorrelationSpanProcessor``.
    """
    cid = peek_correlation_id()
    platform = get_platform_context()
    if platform is None:
        # The common case: one dict, built in one go.
        if cid is None:
            return dict(extra) if extra else {}
        return {CORRELATION_ATTRIBUTE: cid, **(extra or {})}
    attributes: dict[str, Any] = {} if cid is None else {CORRELATION_ATTRIBUTE: cid}
    if platform.platform is not None:
        attributes["commtel.platform"] = platform.platform
    if platform.platform_connection_id is not None:
        attributes["commtel.platform_connection_id"] = str(platform.platform_connection_id)
    if platform.session_id is not None:
        attributes["commtel.session_id"] = platform.session_id
    if extra:
        attributes.update(extra)
    return attributes


def record_exception(span: Span, error: BaseException, *, escaped: bool = False) -> None:
    """Add the ``exception`` event to *span* with its message and stack trace redacted.

    commtel records its own spans' exceptions with this instead of
    ``Span.record_exception``, so no secret reaches a span even under an
    application's TracerProvider where commtel's redacting exporter is not installed.

    .. versionadded:: 0.2.0
    """
    if span.is_recording():
        span.add_event("exception", exception_attributes(error, escaped=escaped))


def error_status(error: BaseException) -> Status:
    """An ERROR status whose description is ``"Type: message"``, redacted."""
    return Status(StatusCode.ERROR, redact_text(f"{type(error).__name__}: {error}"))


@contextmanager
def start_span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes = None) -> Iterator[Span]:
    """Start a span made current for the block, carrying the correlation and platform context.

    Exceptions are recorded (redacted) and re-raised.

    .. versionadded:: 0.1.0
    """
    attrs = _context_attributes()
    if attributes:
        attrs.update(attributes)
    with get_tracer().start_as_current_span(
        name, kind=kind, attributes=attrs, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as error:
            record_exception(span, error, escaped=True)
            span.set_status(error_status(error))
            raise


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """What :func:`configure` set up.

    Attributes:
        service_name: The ``service.name`` resource attribute.
        exporting: ``"otlp-http"``, ``"otlp-grpc"``, ``"console"``, ``"file"``, ``"custom"``
            (several joined by commas) or ``None``.
        endpoint: Where spans go (URL or file path), if anywhere.
        owns_provider: False when the application's own TracerProvider was kept.

    .. versionadded:: 0.1.0
    """

    service_name: str
    exporting: str | None
    endpoint: str | None
    owns_provider: bool


_lock = threading.Lock()
_state: TelemetryConfig | None = None
_provider: TracerProvider | None = None
_exporters: list[SpanExporter] = []
#: Longest a cancelled export may take to let go once shutdown's timeout is over.
_CANCEL_S = 0.25


def configure(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
    spans_file: str | Path | None = None,
    export_timeout_s: float = 5.0,
    resource_attributes: Mapping[str, str] | None = None,
) -> TelemetryConfig:
    """Set up tracing for commtel (idempotent and thread-safe).

    Spans go to *exporter* when one is passed, else over OTLP to *endpoint* when given.
    Otherwise the standard variables decide: ``OTEL_TRACES_EXPORTER`` (comma-separated
    ``otlp``, ``console``, ``none``; ``otlp`` without an endpoint uses OpenTelemetry's
    default ``http://localhost:4318``), else OTLP when ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``
    is set, else *spans_file* if given, else nowhere. OTLP uses *protocol*
    (``"http/protobuf"`` or ``"grpc"``, default from ``OTEL_EXPORTER_OTLP_PROTOCOL``). A
    TracerProvider the application installed itself is never replaced.

    Args:
        service_name: ``service.name``; default ``OTEL_SERVICE_NAME`` or ``"commtel"``.
        endpoint: OTLP endpoint (for HTTP the full URL including ``/v1/traces``).
        protocol: ``"http/protobuf"`` or ``"grpc"``.
        headers: Extra exporter headers (e.g. an API key; never logged).
        exporter: A span exporter of your own instead of OTLP.
        spans_file: Write spans as JSON lines to this file when no exporter is configured.
        export_timeout_s: Upper bound for one export, so a down collector costs bounded time.
        resource_attributes: Extra resource attributes.

    Returns:
        What was set up; a second call returns the first call's result.

    .. versionadded:: 0.1.0
    """
    global _state, _provider, _exporters  # noqa: PLW0603
    export_timeout_s = check.duration(export_timeout_s, "export_timeout_s", owner="configure", positive=True)
    with _lock:
        if _state is not None:
            return _state
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from ._export import CorrelationSpanProcessor, RedactingSpanExporter, chosen_exporters

        name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "commtel"
        existing = trace.get_tracer_provider()
        if not isinstance(existing, trace.ProxyTracerProvider):
            _log.info("commtel keeps the application's TracerProvider %r", type(existing).__name__)
            _state = TelemetryConfig(name, None, None, owns_provider=False)
            return _state
        chosen = (
            [(exporter, "custom", None)]
            if exporter is not None
            else chosen_exporters(endpoint, protocol, headers, export_timeout_s, spans_file)
        )
        # Not the SDK's exit hook (it waits for an export in flight, however long the collector
        # takes): commtel's own, bounded by export_timeout_s.
        provider = TracerProvider(
            resource=Resource.create({"service.name": name, **(resource_attributes or {})}), shutdown_on_exit=False
        )
        provider.add_span_processor(CorrelationSpanProcessor())
        _exporters = [RedactingSpanExporter(each) for each, _, _ in chosen]
        for redacting in _exporters:
            provider.add_span_processor(
                BatchSpanProcessor(
                    redacting,
                    schedule_delay_millis=500,
                    export_timeout_millis=int(export_timeout_s * 1000),
                )
            )
        kind = ",".join(kind for _, kind, _ in chosen) or None
        target = next((target for _, _, target in chosen if target is not None), None)
        trace.set_tracer_provider(provider)
        _provider = provider
        _state = TelemetryConfig(name, kind, target, owns_provider=True)
        atexit.register(_shutdown_at_exit, export_timeout_s)
        return _state


def _shutdown_at_exit(budget_s: float) -> None:
    """The exit hook: flush within *budget_s* in all, cancelling an export still in flight included."""
    shutdown(max(0.0, budget_s - _CANCEL_S))


def shutdown(timeout_s: float = 5.0) -> bool:
    """Flush pending spans and shut commtel's provider down, returning within *timeout_s* whatever happens.

    The flush and the shutdown run in a daemon thread that this call waits for at most
    *timeout_s*: a collector that accepts connections and never answers costs the caller
    the timeout and nothing more, and the interpreter does not wait for that thread when
    it exits; an export still in flight when the time is up is cancelled (the exporters are
    shut down), which takes at most a quarter of a second more. At exit, commtel runs this
    itself within ``configure``'s *export_timeout_s* (the SDK's own exit hook, which waits
    for an export in flight however long it takes, is not installed).

    Returns:
        True when every pending span was exported in time; False otherwise (for example
        the collector is down or slow).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Bounded by *timeout_s* even while an export is in flight.
    """
    global _state, _provider, _exporters
    timeout_s = check.duration(timeout_s, "timeout_s", owner="shutdown")
    with _lock:
        provider, _provider, _state = _provider, None, None
        exporters, _exporters = _exporters, []
    if provider is None:
        return True
    flushed: list[bool] = []

    def flush_and_stop() -> None:
        # The SDK's force_flush does not bound an export already in flight (only the exporter's
        # own timeout does), so the wait is bounded here, not there.
        try:
            flushed.append(provider.force_flush(int(timeout_s * 1000)))
            provider.shutdown()
        except Exception:
            _log.exception("commtel could not flush and shut down its TracerProvider")

    worker = threading.Thread(target=flush_and_stop, name="commtel-shutdown", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive() and exporters:
        # Out of time with an export in flight: shut the exporters down now, which cancels it
        # (gRPC closes its channel), so nothing is left holding the interpreter's exit.
        def cancel() -> None:
            for exporter in exporters:
                exporter.shutdown()

        canceller = threading.Thread(target=cancel, name="commtel-cancel-export", daemon=True)
        canceller.start()
        canceller.join(_CANCEL_S)
    return not worker.is_alive() and flushed == [True]
