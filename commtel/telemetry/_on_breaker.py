"""Telemetry handlers for circuit-breaker events: state gauge, transitions, calls, span events, logs."""

from __future__ import annotations

from opentelemetry import trace

from ..policies._breaker_events import CircuitCallRecorded, CircuitRejected, CircuitStateChanged
from . import _metrics
from ._listener import handles
from ._logging import get_logger
from ._metrics import get_metrics


_log = get_logger("commtel.breaker")
_STATES = ("closed", "open", "half_open")
# id(event) -> (event, metrics, counter child): each breaker emits one prebuilt event per
# result, so its child is bound once (the identity checks make a reused id harmless).
_bound: dict[int, tuple[CircuitCallRecorded, object, object]] = {}
_BOUND_MAX = 1024


@handles(CircuitCallRecorded)
def _on_call(event: CircuitCallRecorded) -> None:
    entry = _bound.get(id(event))
    if entry is not None and entry[0] is event and entry[1] is _metrics._current:
        entry[2].inc()  # type: ignore[attr-defined]
        return
    metrics = get_metrics()
    child = metrics.child(metrics.circuit_calls, event.breaker, event.result)
    child.inc()
    if len(_bound) >= _BOUND_MAX:
        _bound.clear()
    _bound[id(event)] = (event, metrics, child)


@handles(CircuitStateChanged)
def _on_state_changed(event: CircuitStateChanged) -> None:
    metrics = get_metrics()
    for state in _STATES:
        metrics.child(metrics.circuit_state, event.breaker, state).set(1 if state == event.to_state else 0)
    if event.from_state is None:
        return
    metrics.child(metrics.circuit_transitions, event.breaker, event.from_state, event.to_state).inc()
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("commtel.circuit.state_changed", {
            "commtel.circuit.breaker": event.breaker,
            "commtel.circuit.from_state": event.from_state,
            "commtel.circuit.to_state": event.to_state,
            "commtel.circuit.reason": event.reason,
        })
    log = _log.warning if event.to_state == "open" else _log.info
    log("circuit %s: %s -> %s (%s)", event.breaker, event.from_state, event.to_state, event.reason,
        breaker=event.breaker, from_state=event.from_state, to_state=event.to_state, reason=event.reason)


@handles(CircuitRejected)
def _on_rejected(event: CircuitRejected) -> None:
    metrics = get_metrics()
    metrics.child(metrics.circuit_calls, event.breaker, "rejected").inc()
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("commtel.circuit.rejected", {
            "commtel.circuit.breaker": event.breaker,
            "commtel.circuit.state": event.state,
            "commtel.circuit.retry_after_s": event.retry_after_s,
        })
