"""Telemetry handlers for circuit-breaker events: state gauge, transitions, calls, span events, logs."""

from __future__ import annotations

from collections.abc import Callable

from ..telemetry._listener import binds, handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import CIRCUIT_STATE_VALUES, CIRCUIT_STATES, get_metrics
from ..telemetry._tracing import recording_span
from ._events import (
    CircuitBackendFailed,
    CircuitBreakerCreated,
    CircuitCallRecorded,
    CircuitRejected,
    CircuitStateChanged,
)


_log = get_logger("commtel.breaker")
# Every move between two states: a breaker shared on Redis can follow any of them.
_TRANSITIONS = tuple((a, b) for a in CIRCUIT_STATES for b in CIRCUIT_STATES if a != b)


@handles(CircuitBreakerCreated)
def _on_created(event: CircuitBreakerCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.circuit_calls, event.breaker)
    for from_state, to_state in _TRANSITIONS:
        metrics.zero(metrics.circuit_transitions, event.breaker, from_state, to_state)
    if event.backend is not None:
        metrics.zero(metrics.circuit_backend_errors, event.breaker, event.backend)


@binds(CircuitCallRecorded)
def _bind_call(event: CircuitCallRecorded) -> Callable[[], None]:
    metrics = get_metrics()
    return metrics.child(metrics.circuit_calls, event.breaker, event.result).inc


@handles(CircuitCallRecorded)
def _on_call(event: CircuitCallRecorded) -> None:
    _bind_call(event)()


@handles(CircuitStateChanged)
def _on_state_changed(event: CircuitStateChanged) -> None:
    metrics = get_metrics()
    metrics.child(metrics.circuit_state, event.breaker).set(CIRCUIT_STATE_VALUES[event.to_state])
    if event.from_state is None:
        return
    metrics.child(metrics.circuit_transitions, event.breaker, event.from_state, event.to_state).inc()
    if span := recording_span():
        span.add_event(
            "commtel.circuit.state_changed",
            {
                "commtel.circuit.breaker": event.breaker,
                "commtel.circuit.from_state": event.from_state,
                "commtel.circuit.to_state": event.to_state,
                "commtel.circuit.reason": event.reason,
            },
        )
    log = _log.warning if event.to_state == "open" else _log.info
    log(
        "circuit %s: %s -> %s (%s)",
        event.breaker,
        event.from_state,
        event.to_state,
        event.reason,
        breaker=event.breaker,
        from_state=event.from_state,
        to_state=event.to_state,
        reason=event.reason,
    )


@handles(CircuitRejected)
def _on_rejected(event: CircuitRejected) -> None:
    metrics = get_metrics()
    metrics.child(metrics.circuit_calls, event.breaker, "rejected").inc()
    if span := recording_span():
        span.add_event(
            "commtel.circuit.rejected",
            {
                "commtel.circuit.breaker": event.breaker,
                "commtel.circuit.state": event.state,
                "commtel.circuit.retry_after_s": event.retry_after_s,
            },
        )


@handles(CircuitBackendFailed)
def _on_backend_failed(event: CircuitBackendFailed) -> None:
    metrics = get_metrics()
    metrics.child(metrics.circuit_backend_errors, event.breaker, event.backend).inc()
    if span := recording_span():
        span.add_event(
            "commtel.circuit.backend_failed",
            {
                "commtel.circuit.breaker": event.breaker,
                "commtel.circuit.backend": event.backend,
                "commtel.circuit.operation": event.operation,
                "commtel.circuit.fallback": event.fallback,
            },
        )
