"""The OpenTelemetry SDK side of tracing: span processor, redacting and file exporters, OTLP.

Imported by :func:`~commtel.telemetry.configure` (and by applications that install
their own TracerProvider and want commtel's processor or exporters), never at import.
"""

from __future__ import annotations

import os
import threading

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from .._exceptions import ConfigurationError
from .._optional import requires
from .._redaction import redact_text, redact_value
from ._tracing import CORRELATION_ATTRIBUTE, _context_attributes


__all__ = [
    "CorrelationSpanProcessor",
    "JSONLinesSpanExporter",
    "RedactingSpanExporter",
    "chosen_exporters",
    "otlp_exporter",
]

_PROTOCOLS = ("http/protobuf", "grpc")
# OTLP endpoints when OTEL_TRACES_EXPORTER=otlp names none (OpenTelemetry's defaults).
_DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"


class CorrelationSpanProcessor(SpanProcessor):
    """Adds ``commtel.correlation_id`` (and platform) to every span started in the process.

    Outside a correlation context the id is the span's trace id, so every span of one
    trace carries the same one.

    .. versionadded:: 0.1.0
    """

    def on_start(self, span: SDKSpan, parent_context: otel_context.Context | None = None) -> None:  # noqa: ARG002
        if span.attributes is None or CORRELATION_ATTRIBUTE not in span.attributes:
            attributes = _context_attributes()
            if CORRELATION_ATTRIBUTE not in attributes:
                attributes[CORRELATION_ATTRIBUTE] = format(span.get_span_context().trace_id, "032x")
            span.set_attributes(attributes)


def _redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if attributes is None:
        return None
    return {key: redact_value(key, value) for key, value in attributes.items()}


def _redacted(span: ReadableSpan) -> ReadableSpan:
    events = [SpanEvent(event.name, _redact_attributes(event.attributes), event.timestamp) for event in span.events]
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_text(status.description))
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redact_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps an exporter so that no credential or registered secret is exported.

    .. versionadded:: 0.1.0
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self._stopped = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([_redacted(span) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down once (a bounded shutdown may call this early, to cancel an export)."""
        if not self._stopped.is_set():
            self._stopped.set()
            self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class JSONLinesSpanExporter(SpanExporter):
    """Writes each span as one JSON line to a file (the demo's default without OTLP).

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            for span in spans:
                self._file.write(span.to_json(indent=None) + "\n")
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _otlp_endpoint_set() -> bool:
    return "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in os.environ or "OTEL_EXPORTER_OTLP_ENDPOINT" in os.environ


def otlp_exporter(
    endpoint: str | None, protocol: str | None, headers: Mapping[str, str] | None, timeout_s: float
) -> tuple[SpanExporter, str, str]:
    """The OTLP exporter the arguments and ``OTEL_EXPORTER_OTLP_*`` describe, with its kind and URL.

    With no endpoint anywhere, OpenTelemetry's default endpoint of the protocol is used.
    """
    env = os.environ
    traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    protocol = (
        protocol
        or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol not in _PROTOCOLS:
        msg = f"OTLP protocol must be one of {_PROTOCOLS}, got {protocol!r} (set protocol= or OTEL_EXPORTER_OTLP_PROTOCOL)"
        raise ConfigurationError(msg)
    if endpoint is None and traces_endpoint is None and base_endpoint is None:
        base_endpoint = _DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        with requires("opentelemetry.exporter.otlp.proto.grpc", "grpc"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

        url = endpoint or traces_endpoint or base_endpoint
        assert url is not None  # noqa: S101 - guarded above
        insecure = not url.startswith("https://")
        exporter: SpanExporter = GrpcExporter(
            endpoint=url, insecure=insecure, headers=dict(headers) if headers else None, timeout=timeout_s
        )
        return exporter, "otlp-grpc", url
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if endpoint is not None:
        url = endpoint
    elif traces_endpoint is not None:
        url = traces_endpoint
    else:
        assert base_endpoint is not None  # noqa: S101 - guarded above
        url = base_endpoint.rstrip("/") + "/v1/traces"
    exporter = HttpExporter(endpoint=url, headers=dict(headers) if headers else None, timeout=timeout_s)
    return exporter, "otlp-http", url


def chosen_exporters(
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
    timeout_s: float,
    spans_file: str | Path | None,
) -> list[tuple[SpanExporter, str, str | None]]:
    """``(exporter, kind, target)`` for each exporter :func:`~commtel.configure` installs (see there)."""
    if endpoint is not None:
        return [otlp_exporter(endpoint, protocol, headers, timeout_s)]
    names = [name.strip().lower() for name in os.environ.get(_TRACES_EXPORTER, "").split(",") if name.strip()]
    if not names:
        if _otlp_endpoint_set():
            return [otlp_exporter(None, protocol, headers, timeout_s)]
        return [] if spans_file is None else [(JSONLinesSpanExporter(spans_file), "file", str(spans_file))]
    chosen: list[tuple[SpanExporter, str, str | None]] = []
    for name in dict.fromkeys(names):
        if name == "otlp":
            chosen.append(otlp_exporter(None, protocol, headers, timeout_s))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            chosen.append((ConsoleSpanExporter(), "console", "stdout"))
        elif name != "none":
            msg = f"{_TRACES_EXPORTER}={os.environ[_TRACES_EXPORTER]!r}: unknown exporter {name!r}; use otlp, console or none"
            raise ConfigurationError(msg)
    return chosen
