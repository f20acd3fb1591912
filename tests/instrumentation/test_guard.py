"""The composite guard: retry( breaker( limiter( call ))), sync and async, in one span."""

from __future__ import annotations

import asyncio

from collections.abc import Callable
from typing import Any

import pytest

from opentelemetry.trace import SpanKind, StatusCode

import commtel

from commtel import CircuitBreaker, CircuitOpenError, RetryConfig, RetryExhausted
from commtel.instrumentation import Guard
from commtel.ratelimit._core import TokenBucket
from commtel.ratelimit._limiter import RateLimiter
from commtel.testing import set_testing


FAST = RetryConfig(max_attempts=3, base_delay=0.0, jitter=False)


class Flaky:
    """Plays back a script of outcomes: exceptions are raised, anything else returned."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls = 0

    def _next(self) -> Any:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def sync(self) -> Any:
        return self._next()

    async def async_(self) -> Any:
        await asyncio.sleep(0)
        return self._next()


class Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


@pytest.fixture(params=["sync", "async"])
def through(request: pytest.FixtureRequest) -> Callable[[Guard, Flaky], Any]:
    """Call a Flaky through a guard with the sync or the async driver."""
    if request.param == "sync":
        return lambda guard, flaky: guard.call(flaky.sync)
    return lambda guard, flaky: asyncio.run(guard.acall(flaky.async_))


def test_retries_until_success(through, spans, registry) -> None:
    """A transient error is retried; one INTERNAL span carries the retry event; metrics count it."""
    guard = Guard("fetch", platform="sim", retry=FAST)
    flaky = Flaky(ConnectionError("down"), "fine")
    assert through(guard, flaky) == "fine"
    assert flaky.calls == 2
    [span] = [s for s in spans.get_finished_spans() if s.name == "fetch"]
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes["commtel.operation"] == "fetch"
    assert span.attributes["commtel.platform"] == "sim"
    assert "commtel.correlation_id" in span.attributes
    assert [e.name for e in span.events] == ["commtel.retry"]
    labels = {"operation": "fetch", "platform": "sim"}
    assert registry.get_sample_value("commtel_retry_calls_total", {**labels, "result": "success_after_retry"}) == 1
    assert registry.get_sample_value("commtel_retry_attempts_total", {**labels, "reason": "ConnectionError"}) == 1
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", {**labels, "outcome": "success"}) == 1


def test_last_error_is_reraised_when_retries_run_out(through, spans) -> None:
    """When attempts run out the original exception propagates and the span is an error."""
    guard = Guard("fetch", retry=FAST)
    flaky = Flaky(*[ConnectionError("down")] * 5)
    with pytest.raises(ConnectionError):
        through(guard, flaky)
    assert flaky.calls == 3
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectionError"


def test_rejected_result_raises_or_returns(through) -> None:
    """A 5xx result is retried; when retries run out it raises RetryExhausted, or is returned if asked."""
    with pytest.raises(RetryExhausted):
        through(Guard("get", retry=FAST), Flaky(Status(503), Status(503), Status(503)))
    last = Status(502)
    assert through(Guard("get", retry=FAST, exhausted_result="return"), Flaky(Status(503), Status(503), last)) is last


def test_open_breaker_rejects_without_calling(through, registry) -> None:
    """Failures open the breaker; the next call is rejected before the function runs."""
    breaker = CircuitBreaker("svc", failure_threshold=2, recovery_timeout=60)
    guard = Guard("call", breaker=breaker, retry=None)
    flaky = Flaky(RuntimeError("a"), RuntimeError("b"))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            through(guard, flaky)
    with pytest.raises(CircuitOpenError):
        through(guard, flaky)
    assert flaky.calls == 2
    assert registry.get_sample_value("commtel_circuit_calls_total", {"breaker": "svc", "result": "rejected"}) == 1


def test_each_retry_passes_the_breaker_again(through) -> None:
    """Retries count as breaker outcomes one by one: the breaker opens mid-retry and stops them."""
    breaker = CircuitBreaker("svc2", failure_threshold=2, recovery_timeout=60)
    guard = Guard("call", breaker=breaker, retry=RetryConfig(max_attempts=5, base_delay=0.0, jitter=False))
    flaky = Flaky(*[ConnectionError("x")] * 5)
    with pytest.raises(CircuitOpenError):
        through(guard, flaky)
    assert flaky.calls == 2
    assert breaker.state == "open"


def test_limiter_paces_calls(through) -> None:
    """Each attempt takes a limiter unit; a throttled attempt waits instead of failing."""
    import time

    limiter = RateLimiter(TokenBucket(rate=40.0, burst=1), name="lim")
    guard = Guard("call", platform="sim", limiter=limiter, retry=None)
    started = time.monotonic()
    for _ in range(3):
        through(guard, Flaky("ok"))
    assert time.monotonic() - started >= 2 / 40 - 0.005


def test_limiter_refusal_is_not_a_breaker_failure() -> None:
    """A limiter that refuses to wait long enough does not count against the breaker."""
    limiter = RateLimiter(TokenBucket(rate=0.01, burst=1), name="slow")
    breaker = CircuitBreaker("svc3", failure_threshold=1)
    limiter.acquire()

    class Impatient(RateLimiter):
        def acquire(self, *args: Any, **kwargs: Any) -> Any:
            return super().acquire(*args, timeout=0, **kwargs)

    impatient = Impatient(TokenBucket(rate=0.01, burst=1), name="slow2")
    impatient.acquire()
    guard = Guard("call", breaker=breaker, limiter=impatient, retry=None)
    with pytest.raises(commtel.RateLimitExceeded):
        guard.call(lambda: "never")
    assert breaker.state == "closed"


def test_async_timeout_is_per_attempt() -> None:
    """timeout_s bounds each async attempt; a timed-out attempt is retried like any timeout."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return "done"

    guard = Guard("call", retry=FAST, timeout_s=0.05)
    assert asyncio.run(guard.acall(slow_then_fast)) == "done"
    assert calls == 2


def test_decorator_keeps_signature_and_kind() -> None:
    """As a decorator the guard wraps sync and async functions, keeping name and coroutine-ness."""
    guard = Guard("deco", retry=FAST)

    @guard
    def add(a: int, b: int) -> int:
        return a + b

    @guard
    async def aadd(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    assert asyncio.run(aadd(2, 3)) == 5
    assert add.__name__ == "add"
    assert asyncio.iscoroutinefunction(aadd)


def test_no_span_without_tracing_but_metrics_still_flow(monkeypatch, spans, registry) -> None:
    """With tracing switched off the guard makes no span at all, yet metrics are recorded."""
    monkeypatch.setattr("commtel.instrumentation._guard._tracing_installed", lambda: False)
    Guard("quiet", retry=FAST).call(lambda: 1)
    assert spans.get_finished_spans() == ()
    assert (
        registry.get_sample_value(
            "commtel_retry_calls_total", {"operation": "quiet", "platform": "", "result": "success_first_try"}
        )
        == 1
    )


def test_repr_shows_configuration() -> None:
    """repr names the operation and the policies in use."""
    text = repr(Guard("op", platform="p", retry=FAST, timeout_s=2))
    assert "op" in text and "3 attempts" in text and "timeout_s=2" in text


def test_testing_mode_makes_backoff_instant() -> None:
    """Under set_testing() a long backoff does not sleep."""
    import time

    guard = Guard("op", retry=RetryConfig(max_attempts=2, base_delay=30, jitter=False))
    with set_testing():
        started = time.monotonic()
        assert guard.call(Flaky(ConnectionError("x"), "ok").sync) == "ok"
    assert time.monotonic() - started < 1


def test_limiter_key_shares_one_budget_with_manual_acquires() -> None:
    """A guard spends the limiter key it is given, so manual acquires on that key share its budget."""
    limiter = RateLimiter(TokenBucket(rate=0.001, burst=2))
    guard = Guard("op", limiter=limiter, limiter_key="tenant-a", span=False)
    assert guard.call(lambda: 1) == 1
    assert limiter.try_acquire("tenant-a")  # the second and last unit of tenant-a
    assert not limiter.try_acquire("tenant-a")
    assert limiter.try_acquire("default")  # other keys are untouched
