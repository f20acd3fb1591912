"""Telemetry handlers for progress events: active-task gauge, task durations, span events."""

from __future__ import annotations

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._errors import ErrorRecorded
from ._progress import ProgressTrackerCreated, ProgressUpdated, TaskFinished, TaskStarted


_log = get_logger("commtel.progress")


@handles(ProgressTrackerCreated)
def _on_created(event: ProgressTrackerCreated) -> None:
    metrics = get_metrics()
    metrics.zero(metrics.tasks_active, event.kind)
    metrics.zero(metrics.task_duration, event.kind)
    metrics.child(metrics.tracker_rows_purged, "progress")


@handles(TaskStarted)
def _on_started(event: TaskStarted) -> None:
    metrics = get_metrics()
    metrics.child(metrics.tasks_active, event.kind).inc()
    if span := recording_span():
        span.add_event("commtel.task.started", {"commtel.task.id": event.task_id, "commtel.task.kind": event.kind})


@handles(ProgressUpdated)
def _on_updated(event: ProgressUpdated) -> None:
    if span := recording_span():
        attributes: dict[str, str | float] = {
            "commtel.task.id": event.task_id,
            "commtel.task.kind": event.kind,
            "commtel.progress.step": event.step,
            "commtel.progress.percent": event.percent,
        }
        if event.eta_s is not None:
            attributes["commtel.progress.eta_s"] = event.eta_s
        span.add_event("commtel.progress", attributes)


@handles(TaskFinished)
def _on_finished(event: TaskFinished) -> None:
    metrics = get_metrics()
    if event.was_active:
        metrics.child(metrics.tasks_active, event.kind).dec()
    metrics.observe(metrics.task_duration, event.duration_s, event.kind, event.outcome)
    if span := recording_span():
        span.add_event(
            "commtel.task.finished",
            {
                "commtel.task.id": event.task_id,
                "commtel.task.kind": event.kind,
                "commtel.task.outcome": event.outcome,
                "commtel.task.duration_s": event.duration_s,
            },
        )
    if event.outcome == "failed":
        _log.warning(
            "task %s failed after %.1fs", event.task_id, event.duration_s, task_id=event.task_id, kind=event.kind
        )


@handles(ErrorRecorded)
def _on_error_recorded(event: ErrorRecorded) -> None:
    if span := recording_span():
        span.add_event(
            "commtel.error_recorded",
            {
                "commtel.operation": event.operation,
                "error.type": event.error_type,
            },
        )
    _log.warning(
        "%s: item failed with %s",
        event.operation,
        event.error_type,
        operation=event.operation,
        error_type=event.error_type,
        item=event.item,
    )
