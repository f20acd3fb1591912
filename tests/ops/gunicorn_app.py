"""The WSGI app of the gunicorn test: every worker builds a breaker and starts one long task when it boots."""

from __future__ import annotations

import os

from collections.abc import Callable, Iterable
from typing import Any

from commtel import CircuitBreaker
from commtel.progress import ProgressTracker
from commtel.telemetry import make_wsgi_app


breaker = CircuitBreaker("api", failure_threshold=3)
tracker = ProgressTracker(f"sqlite:///{os.environ['COMMTEL_TEST_STATE']}/progress-{os.getpid()}.db", kind="job")
tracker.create_progress_session(f"task-{os.getpid()}", "worker")
metrics = make_wsgi_app()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """/metrics, /trip (force this worker's breaker open), /pid."""
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)  # type: ignore[no-any-return]
    if environ["PATH_INFO"] == "/trip":
        breaker.force_open()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
