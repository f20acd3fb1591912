"""Telemetry handlers for tracker events: message counters, purged rows, span events, logs."""

from __future__ import annotations

from ..telemetry._listener import handles
from ..telemetry._logging import get_logger
from ..telemetry._metrics import get_metrics
from ..telemetry._tracing import recording_span
from ._retention import RowsPurged
from ._tracker import ConversationTrackerCreated, MessageStateChanged


_log = get_logger("commtel.tracker")


@handles(MessageStateChanged)
def _on_state_changed(event: MessageStateChanged) -> None:
    metrics = get_metrics()
    metrics.child(metrics.messages, event.platform, event.state).inc()
    if span := recording_span():
        attributes = {
            "commtel.message.id": event.message_id,
            "commtel.conversation.id": event.conversation_id,
            "commtel.message.state": event.state,
            "commtel.platform": event.platform,
        }
        if event.previous is not None:
            attributes["commtel.message.previous_state"] = event.previous
        if event.worker_id is not None:
            attributes["commtel.worker_id"] = event.worker_id
        span.add_event("commtel.message.state_changed", attributes)
    if event.state == "failed":
        _log.warning(
            "message %s failed",
            event.message_id,
            message_id=event.message_id,
            conversation_id=event.conversation_id,
            worker_id=event.worker_id,
        )
    elif event.previous == event.state == "in_progress":
        _log.info(
            "message %s reclaimed by %s after its lease expired",
            event.message_id,
            event.worker_id,
            message_id=event.message_id,
            conversation_id=event.conversation_id,
            worker_id=event.worker_id,
        )


@handles(ConversationTrackerCreated)
def _on_created(_event: ConversationTrackerCreated) -> None:
    metrics = get_metrics()
    metrics.child(metrics.tracker_rows_purged, "messages")


@handles(RowsPurged)
def _on_rows_purged(event: RowsPurged) -> None:
    metrics = get_metrics()
    metrics.child(metrics.tracker_rows_purged, event.table).inc(event.rows)
    if span := recording_span():
        span.add_event("commtel.tracker.purged", {"commtel.tracker.table": event.table, "commtel.rows": event.rows})
