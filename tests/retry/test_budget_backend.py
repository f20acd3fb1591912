"""A Redis-shared retry budget whose Redis fails: answered by fail_open, counted, traced, logged once, bounded in time."""

from __future__ import annotations

import logging
import signal
import time

import pytest

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from commtel import RetryPolicy
from commtel.backends._redis_route import Health
from commtel.errors import RetryBudgetExhausted
from commtel.events import RetryBudgetBackendFailed
from commtel.retries import RetryBudget
from commtel.testing import capture_events, set_testing
from tests.harness.procs import RedisServer


ERRORS = "commtel_retry_budget_backend_errors_total"
TIMEOUT_S = 0.2
COOLDOWN_S = 0.5


def _errors(registry: CollectorRegistry, budget: str) -> float | None:
    return registry.get_sample_value(ERRORS, {"budget": budget, "backend": "redis"})


def _flaky() -> tuple[list[int], object]:
    """A call that fails with ConnectionError on its first attempt and answers "ok" after."""
    attempts: list[int] = []

    def call() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise ConnectionError("dependency blinked")
        return "ok"

    return attempts, call


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_stopped_redis_answers_by_fail_open_counted_traced_and_logged_once(
    redis_server: RedisServer,
    redis_url: str,
    registry: CollectorRegistry,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    fail_open: bool,  # noqa: FBT001 - the parameter under test
) -> None:
    """Redis stopped: each retry is allowed (fail_open=True) or denied (False) at once, every failed round trip
    is counted with the budget's labels and traced on the caller's span, one warning per streak; no Redis
    error reaches the caller."""
    name = f"stopped-{fail_open}"
    # period 100 s: buckets of 10 s, so no call flush falls due during the test; only retry decisions reach Redis.
    budget = RetryBudget(name, period=100, min_retries=0, ratio=1.0, redis=redis_url, fail_open=fail_open)
    policy = RetryPolicy(operation=f"op-{name}", budget=budget, max_attempts=3)
    set_testing()  # instant backoff: the waits are not what is measured here
    assert _errors(registry, name) == 0  # exposed from construction
    assert policy.call(lambda: "up") == "up"
    assert budget.try_acquire(time.monotonic()) is True  # Redis decides: 1 call flushed, 1 retry taken
    redis_server.stop()
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="commtel.retry"), capture_events() as events:
            answers = [budget.try_acquire(time.monotonic()) for _ in range(3)]
            attempts, flaky = _flaky()
            with trace.get_tracer("test").start_as_current_span("caller"):
                if fail_open:
                    assert policy.call(flaky) == "ok"  # the retry was allowed
                    assert attempts == [1, 2]
                else:
                    with pytest.raises(RetryBudgetExhausted) as raised:
                        policy.call(flaky)
                    assert attempts == [1]  # the retry was denied: the caller sees the dependency's error
                    assert isinstance(raised.value.__cause__, ConnectionError)
        elapsed = time.monotonic() - started
    finally:
        redis_server.start()
    assert answers == [fail_open] * 3
    assert elapsed < 1.0  # a refused connection fails at once
    failed = [e for e in events if isinstance(e, RetryBudgetBackendFailed)]
    assert failed == [RetryBudgetBackendFailed(name, "redis", "ConnectionError", fail_open)] * 4
    assert _errors(registry, name) == 4
    [caller] = [s for s in spans.get_finished_spans() if s.name == "caller"]
    [event] = [e for e in caller.events if e.name == "commtel.retry.budget_backend_failed"]
    assert dict(event.attributes or {}) == {
        "commtel.retry.budget": name,
        "commtel.retry.backend": "redis",
        "error.type": "ConnectionError",
        "commtel.retry.fail_open": fail_open,
    }
    warnings = [r.getMessage() for r in caplog.records if r.name == "commtel.retry" and "redis" in r.getMessage()]
    verdict = "allowing" if fail_open else "denying"
    assert len(warnings) == 1 and f"retry budget {name!r}: redis failed (ConnectionError" in warnings[0], warnings
    assert f"{verdict} retries until it answers" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="commtel.retry"):
        # Redis decides again, with the call held back during the outage: 2 calls x ratio 1 = 2 retries
        assert budget.try_acquire(time.monotonic()) is True
        assert budget.try_acquire(time.monotonic()) is False  # the shared cap is back
    assert _errors(registry, name) == 4
    assert [r.getMessage() for r in caplog.records if r.name == "commtel.retry"] == [
        f"retry budget {name!r}: redis reachable again"
    ]


def test_a_frozen_redis_costs_one_timeout_per_cooldown(
    redis_server: RedisServer, redis_url: str, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 retry decisions on a frozen Redis (SIGSTOP) wait out at most one timeout per cool-down begun,
    each answers by fail_open and is counted, and Redis decides again once it thaws."""
    budget = RetryBudget("frozen", redis=redis_url, redis_timeout=TIMEOUT_S, redis_cooldown=COOLDOWN_S)
    timeouts: list[float] = []
    timed_out = Health.timed_out

    def counted(health: Health, now: float) -> None:  # every timeout a decision waited out on the frozen server
        timeouts.append(now)
        timed_out(health, now)

    monkeypatch.setattr(Health, "timed_out", counted)
    assert budget.try_acquire(time.monotonic())  # connected, script loaded
    redis_server.signal(signal.SIGSTOP)
    try:
        with capture_events() as events:
            started = time.monotonic()
            answers = [budget.try_acquire(time.monotonic()) for _ in range(100)]
            elapsed = time.monotonic() - started
    finally:
        redis_server.signal(signal.SIGCONT)
    assert answers == [True] * 100
    cooldowns_begun = 1 + int(elapsed / COOLDOWN_S)
    assert 1 <= len(timeouts) <= cooldowns_begun
    assert elapsed <= len(timeouts) * TIMEOUT_S * 1.5 + 100 * 0.01  # with room for a busy machine
    errors = {e.error for e in events if isinstance(e, RetryBudgetBackendFailed)}
    assert errors == {"TimeoutError", "BackendCoolingDown"}
    assert _errors(registry, "frozen") == 100
    time.sleep(COOLDOWN_S)  # the behaviour under test: the cool-down passes in real time
    assert budget.try_acquire(time.monotonic())  # the probe finds Redis answering again
    assert _errors(registry, "frozen") == 100
    assert budget.try_acquire(time.monotonic())
    assert _errors(registry, "frozen") == 100
