"""OpenTelemetry propagation of the correlation id: W3C baggage in the current context and on the wire.

The only module of :mod:`commtel.context` that imports OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import Token

from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context


__all__ = ["attach_baggage", "detach", "extract_baggage", "inject"]

#: The W3C baggage key that carries the correlation id.
BAGGAGE_KEY = "correlation_id"


def attach_baggage(correlation_id: str) -> Token[otel_context.Context]:
    """Put *correlation_id* in the current OpenTelemetry context's baggage; returns the token for :func:`detach`."""
    return otel_context.attach(baggage.set_baggage(BAGGAGE_KEY, correlation_id))


def detach(token: Token[otel_context.Context]) -> None:
    """Restore the OpenTelemetry context :func:`attach_baggage` replaced."""
    otel_context.detach(token)


def inject(headers: MutableMapping[str, str], correlation_id: str) -> None:
    """Add W3C ``traceparent`` (the current span) and ``baggage`` (*correlation_id*) to *headers*."""
    propagate.inject(headers, context=baggage.set_baggage(BAGGAGE_KEY, correlation_id))


def extract_baggage(headers: Mapping[str, str]) -> str | None:
    """The correlation id in the W3C ``baggage`` of incoming *headers*, if any."""
    found = baggage.get_baggage(BAGGAGE_KEY, propagate.extract({k.lower(): v for k, v in headers.items()}))
    return found if isinstance(found, str) else None
