"""A process-local stand-in for the demo: feeds every contract metric, served over real HTTP.

It drives :class:`commtel.telemetry._metrics.Metrics` on its own registry (never the active
one, so other tests are unaffected) with every label combination the dashboards and rules
select, and observes histograms inside a sampled span so exemplars carry a trace_id.
"""

from __future__ import annotations

import itertools
import threading

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server
from typing_extensions import Self

from commtel.telemetry._metrics import Metrics


PLATFORMS = {"chat": ("send", "history"), "social": ("post", "timeline")}
RETRY_RESULTS = ("success_first_try", "success_after_retry", "exhausted", "not_retryable")
RETRY_REASONS = ("503", "429", "rate_limited", "TimeoutError")
BREAKERS = {"chat": "closed", "social": "open", "crm": "half_open"}
STATES = ("closed", "open", "half_open")
TRANSITIONS = (("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open"))
CIRCUIT_RESULTS = ("success", "failure", "rejected", "slow")
GRANTS = ("refresh_token", "client_credentials")
MESSAGE_STATES = ("queued", "sent", "delivered", "failed")
TASK_KINDS = ("export", "import")


class ContractEmitter:
    """Serves ``/metrics`` on a free loopback port and updates every contract metric each tick."""

    def __init__(self, tick_s: float = 0.1) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.tick_s = tick_s
        self._tracer = TracerProvider().get_tracer("commtel.tests.ops")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="contract-emitter", daemon=True)
        self._server: Any = None
        self._ticks = itertools.count()
        self.target = ""

    def start(self) -> Self:
        self.tick()
        self._server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.tick()

    def _observe(self, histogram: Any, value: float, *labels: str) -> None:
        with self._tracer.start_as_current_span("emit"):
            self.metrics.observe(histogram, value, *labels)

    def tick(self) -> None:
        """One round of traffic: every series moves, so rates and ratios are never empty."""
        m, n = self.metrics, next(self._ticks)
        for platform, operations in PLATFORMS.items():
            limiter = f"{platform}-api"
            for decision in ("allowed", "throttled"):
                m.child(m.ratelimit_decisions, limiter, platform, decision).inc()
            self._observe(m.ratelimit_wait, 0.02 + 0.01 * (n % 5), limiter, platform)
            m.child(m.ratelimit_backend_errors, limiter, "redis").inc()
            for state in MESSAGE_STATES:
                m.child(m.messages, platform, state).inc()
            for operation in operations:
                for result in RETRY_RESULTS:
                    m.child(m.retry_calls, operation, platform, result).inc()
                for reason in RETRY_REASONS:
                    m.child(m.retry_attempts, operation, platform, reason).inc()
                self._observe(m.retry_backoff, 0.1 * (1 + n % 4), operation, platform)
                for outcome, seconds in (("success", 0.05), ("error", 0.4)):
                    self._observe(m.operation_duration, seconds * (1 + n % 3), operation, platform, outcome)
        for breaker, current in BREAKERS.items():
            for state in STATES:
                m.child(m.circuit_state, breaker, state).set(1 if state == current else 0)
            for from_state, to_state in TRANSITIONS:
                m.child(m.circuit_transitions, breaker, from_state, to_state).inc()
            for result in CIRCUIT_RESULTS:
                m.child(m.circuit_calls, breaker, result).inc()
        for grant in GRANTS:
            for result in ("success", "error"):
                m.child(m.oauth_token_requests, "social", grant, result).inc()
        m.child(m.oauth_token_expiry, "social").set(300 - n % 300)
        for kind in TASK_KINDS:
            m.child(m.tasks_active, kind).set(1 + n % 3)
            for outcome in ("success", "error"):
                self._observe(m.task_duration, 0.5 * (1 + n % 4), kind, outcome)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

