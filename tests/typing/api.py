"""Type-checked by mypy --strict, never run: the public API as users write it."""

from __future__ import annotations

import commtel

from commtel.telemetry import TelemetryConfig, start_span


def telemetry() -> None:
    config: TelemetryConfig = commtel.configure("svc", protocol="grpc", export_timeout_s=1.0)
    _ = config.exporting
    log = commtel.get_logger("x", platform="twitter")
    log.info("sent", tweet_id=1)
    with commtel.correlation_context() as cid, start_span("s") as span:
        span.set_attribute("id", cid)
    tracker = commtel.OperationTracker()
    op = tracker.start_operation("a", "b")
    seconds: float = op.complete(success=True)
    _ = seconds
    stats: dict[str, object] = tracker.get_stats("b")
    _ = stats
    ok: bool = commtel.shutdown(timeout_s=1)
    _ = ok
