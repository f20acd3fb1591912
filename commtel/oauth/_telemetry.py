"""Telemetry handlers for OAuth events: token-request spans, metrics and logs, expiry gauge.

A token request becomes one CLIENT span made after the fact from the event's
start time and duration (policies do not import OpenTelemetry), a sample of
``commtel_oauth_token_requests_total`` and a log line. Nothing here reads a
credential: the events carry none.
"""

from __future__ import annotations

import math

from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import _context_attributes, get_tracer, recording_span
from ._events import (
    CallbackRejected,
    OAuthClientCreated,
    TokenRejected,
    TokenRequestFinished,
    TokenStoreWriteFailed,
    TokenUpdated,
)


_log = get_logger("commtel.oauth")


@handles(OAuthClientCreated)
def _on_created(event: OAuthClientCreated) -> None:
    metrics = get_metrics()
    for grant_type in event.grant_types:
        metrics.zero(metrics.oauth_token_requests, event.provider, grant_type)


@handles(TokenRequestFinished)
def _on_token_request(event: TokenRequestFinished) -> None:
    metrics = get_metrics()
    result = "success" if event.success else "error"
    metrics.child(metrics.oauth_token_requests, event.provider, event.grant_type, result).inc()
    _request_span(event)
    fields: dict[str, Any] = {
        "provider": event.provider,
        "grant_type": event.grant_type,
        "result": result,
        "status_code": event.status_code,
        "duration_s": round(event.duration_s, 6),
    }
    if event.success:
        _log.info("oauth token request succeeded", **fields)
    else:
        _log.warning("oauth token request failed", error=event.error, **fields)


def _request_span(event: TokenRequestFinished) -> None:
    attributes = _context_attributes()
    attributes.update(
        {
            "oauth.provider": event.provider,
            "oauth.grant_type": event.grant_type,
            "http.request.method": "POST",
            "server.address": event.server_address,
        }
    )
    if event.server_port is not None:
        attributes["server.port"] = event.server_port
    if event.status_code is not None:
        attributes["http.response.status_code"] = event.status_code
    if event.error is not None:
        attributes["error.type"] = event.error
    span = get_tracer().start_span(
        f"oauth {event.grant_type}", kind=SpanKind.CLIENT, attributes=attributes, start_time=event.started_at_ns
    )
    if event.error is not None:
        span.set_status(Status(StatusCode.ERROR, event.error))
    span.end(end_time=event.started_at_ns + int(event.duration_s * 1e9))


@handles(TokenUpdated)
def _on_token_updated(event: TokenUpdated) -> None:
    metrics = get_metrics()
    # The expiry time itself (a timestamp, right in every worker process); unknown expiry
    # reads +Inf (never expires), a removed token 0 (nothing valid held).
    expires_at = 0.0 if event.removed else math.inf if event.expires_at is None else event.expires_at
    metrics.child(metrics.oauth_token_expiry, event.provider).set(expires_at)


@handles(TokenRejected)
def _on_token_rejected(event: TokenRejected) -> None:
    if span := recording_span():
        span.add_event("commtel.oauth.token_rejected", {"oauth.provider": event.provider})
    _log.info("api rejected the access token; renewing it and replaying once", provider=event.provider)


@handles(CallbackRejected)
def _on_callback_rejected(event: CallbackRejected) -> None:
    _log.warning("oauth callback rejected", provider=event.provider, reason=event.reason)


@handles(TokenStoreWriteFailed)
def _on_store_write_failed(event: TokenStoreWriteFailed) -> None:
    if span := recording_span():
        span.add_event("commtel.oauth.token_store_write_failed", {"error.type": event.error})
    _log.warning(
        "token store could not save the token of %r (%s); it is kept in memory for this process until a save succeeds",
        event.key,
        event.error,
        store=event.store,
        key=event.key,
        error=event.error,
    )
