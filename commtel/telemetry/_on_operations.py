"""Telemetry handlers for operation events."""

from __future__ import annotations

from ._listener import handles
from ._metrics import get_metrics
from ._operations import OperationCompleted


@handles(OperationCompleted)
def _on_completed(event: OperationCompleted) -> None:
    metrics = get_metrics()
    outcome = "success" if event.success else "error"
    metrics.observe(metrics.operation_duration, event.duration_s, event.operation, event.platform, outcome)
