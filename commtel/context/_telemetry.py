"""OpenTelemetry propagation of the correlation id: W3C baggage in the current context and on the wire.

The only module of :mod:`commtel.context` that imports OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import Token

from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation import get_current_span


__all__ = ["attach_baggage", "current_trace_id", "detach", "extract_baggage", "inject"]

#: The W3C baggage key that carries the correlation id.
BAGGAGE_KEY = "correlation_id"


def attach_baggage(correlation_id: str) -> Token[otel_context.Context]:
    """Put *correlation_id* in the current OpenTelemetry context's baggage; returns the token for :func:`detach`."""
    return otel_context.attach(baggage.set_baggage(BAGGAGE_KEY, correlation_id))


def detach(token: Token[otel_context.Context]) -> None:
    """Restore the OpenTelemetry context :func:`attach_baggage` replaced."""
    otel_context.detach(token)


def inject(headers: MutableMapping[str, str], correlation_id: str | None) -> None:
    """Add W3C ``traceparent`` (the current span) and ``baggage`` to *headers*, per the global propagator.

    The baggage carries *correlation_id*; with ``None`` the correlation id is taken out of
    the context's baggage (other entries stay).
    """
    if correlation_id is not None:
        ctx = baggage.set_baggage(BAGGAGE_KEY, correlation_id)
    else:
        ctx = otel_context.get_current()
        if baggage.get_baggage(BAGGAGE_KEY, ctx) is not None:
            ctx = baggage.remove_baggage(BAGGAGE_KEY, ctx)
    propagate.inject(headers, context=ctx)


def current_trace_id() -> str | None:
    """The current trace's id (32 hex characters), or ``None`` outside a trace."""
    span_context = get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def extract_baggage(headers: Mapping[str, str]) -> str | None:
    """The correlation id in the W3C ``baggage`` of incoming *headers*, if any."""
    found = baggage.get_baggage(BAGGAGE_KEY, propagate.extract({k.lower(): v for k, v in headers.items()}))
    return found if isinstance(found, str) else None
