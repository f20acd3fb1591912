"""Telemetry handlers for retry events: contract metrics, span events on the call's span, logs."""

from __future__ import annotations

from collections.abc import Callable

from ..telemetry._listener import binds, handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._events import (
    RetryBudgetBackendFailed,
    RetryBudgetCreated,
    RetryCallFinished,
    RetryDenied,
    RetryGaveUp,
    RetryPolicyCreated,
    RetryScheduled,
)


_log = get_logger("commtel.retry")


@handles(RetryPolicyCreated)
def _on_created(event: RetryPolicyCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.retry_calls, event.operation, event.platform)
    metrics.zero(metrics.retry_backoff, event.operation, event.platform)


@binds(RetryCallFinished)
def _bind_finished(event: RetryCallFinished) -> Callable[[], None]:
    metrics = get_metrics()
    return metrics.child(metrics.retry_calls, event.operation, event.platform, event.result).inc


@handles(RetryCallFinished)
def _on_finished(event: RetryCallFinished) -> None:
    _bind_finished(event)()


@handles(RetryScheduled)
def _on_scheduled(event: RetryScheduled) -> None:
    metrics = get_metrics()
    platform = event.platform
    metrics.child(metrics.retry_attempts, event.operation, platform, event.reason).inc()
    metrics.observe(metrics.retry_backoff, event.delay_s, event.operation, platform)
    if span := recording_span():
        span.add_event(
            "commtel.retry",
            {
                "commtel.retry.attempt": event.attempt,
                "commtel.retry.delay_s": event.delay_s,
                "commtel.retry.reason": event.reason,
                "commtel.operation": event.operation,
            },
        )
    _log.info(
        "retrying %s in %.3fs (retry %d, reason %s)",
        event.operation,
        event.delay_s,
        event.attempt,
        event.reason,
        operation=event.operation,
        retry_attempt=event.attempt,
        delay_s=event.delay_s,
        reason=event.reason,
    )


@handles(RetryGaveUp)
def _on_exhausted(event: RetryGaveUp) -> None:
    if span := recording_span():
        span.add_event(
            "commtel.retry.exhausted",
            {
                "commtel.retry.attempts": event.attempts,
                "commtel.retry.reason": event.reason,
                "commtel.retry.stopped_by": event.stopped_by,
                "commtel.operation": event.operation,
            },
        )
    _log.warning(
        "%s failed after %d attempts (reason %s, stopped by %s)",
        event.operation,
        event.attempts,
        event.reason,
        event.stopped_by,
        operation=event.operation,
        attempts=event.attempts,
        reason=event.reason,
        stopped_by=event.stopped_by,
    )


@handles(RetryDenied)
def _on_budget_denied(event: RetryDenied) -> None:
    if span := recording_span():
        span.add_event(
            "commtel.retry.budget_denied",
            {
                "commtel.retry.budget": event.budget,
                "commtel.retry.reason": event.reason,
                "commtel.operation": event.operation,
            },
        )
    _log.warning(
        "retry budget %s denied a retry of %s",
        event.budget,
        event.operation,
        operation=event.operation,
        budget=event.budget,
        reason=event.reason,
    )


@handles(RetryBudgetCreated)
def _on_budget_created(event: RetryBudgetCreated) -> None:
    if event.backend != "memory":
        metrics = get_metrics()
        metrics.zero(metrics.retry_budget_backend_errors, event.budget, event.backend)


@handles(RetryBudgetBackendFailed)
def _on_budget_backend_failed(event: RetryBudgetBackendFailed) -> None:
    metrics = get_metrics()
    metrics.child(metrics.retry_budget_backend_errors, event.budget, event.backend).inc()
    if span := recording_span():
        span.add_event(
            "commtel.retry.budget_backend_failed",
            {
                "commtel.retry.budget": event.budget,
                "commtel.retry.backend": event.backend,
                "error.type": event.error,
                "commtel.retry.fail_open": event.fail_open,
            },
        )
