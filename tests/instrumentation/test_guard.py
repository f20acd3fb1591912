"""The composite guard: retry( breaker( limiter( concurrency( call )))), sync and async, in one span."""

from __future__ import annotations

import asyncio

from collections.abc import Callable
from typing import Any

import pytest

from opentelemetry.trace import SpanKind, StatusCode

import commtel

from commtel import CircuitBreaker, CircuitOpenError, RetryConfig, RetryExhausted
from commtel.concurrency import AdaptiveLimiter, Bulkhead, ConcurrencyLimitExceeded, Window
from commtel.events import OperationCompleted
from commtel.instrumentation import Guard
from commtel.ratelimit._core import TokenBucket
from commtel.ratelimit._limiter import RateLimiter
from commtel.retries._core import RetryCore
from commtel.testing import capture_events, set_testing
from tests.harness.clock import FakeClock


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

    def sync(guard: Guard, flaky: Flaky) -> Any:
        return guard.call(flaky.sync)

    def async_(guard: Guard, flaky: Flaky) -> Any:
        return asyncio.run(guard.acall(flaky.async_))

    return sync if request.param == "sync" else async_


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


def test_limiter_paces_calls(through, clock: FakeClock) -> None:
    """Each attempt takes a limiter unit; a throttled attempt waits exactly its spacing instead of failing."""
    limiter = RateLimiter(TokenBucket(rate=40.0, burst=1), name="lim")
    guard = Guard("call", platform="sim", limiter=limiter, retry=None)
    for _ in range(3):
        assert through(guard, Flaky("ok")) == "ok"
    assert clock.sleeps == pytest.approx([1 / 40, 1 / 40])


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


def test_a_full_concurrency_limit_refuses_without_calling_and_is_not_a_breaker_failure(through) -> None:
    """A bulkhead with no free slot refuses the attempt; the breaker does not count it, the next call runs."""
    bulkhead = Bulkhead("guarded", max_concurrent=1)
    breaker = CircuitBreaker("svc-bulkhead", failure_threshold=1)
    guard = Guard("call", breaker=breaker, concurrency=bulkhead, retry=None)
    flaky = Flaky("ok")
    bulkhead.acquire()  # another caller holds the only slot
    with pytest.raises(ConcurrencyLimitExceeded):
        through(guard, flaky)
    assert (flaky.calls, breaker.state) == (0, "closed")
    bulkhead.release()
    assert through(guard, flaky) == "ok"
    assert (flaky.calls, bulkhead.in_flight) == (1, 0)


class _Windows:
    """A limit algorithm that keeps the windows it is shown and leaves the limit alone."""

    name = "recording"

    def __init__(self) -> None:
        self.seen: list[Window] = []

    def next_limit(self, limit: float, window: Window, baseline_s: float) -> float:  # noqa: ARG002 - the protocol
        self.seen.append(window)
        return limit


def test_adaptive_limiter_measures_each_attempt_and_a_timed_out_one_as_a_drop() -> None:
    """Each async attempt takes a slot of the adaptive limiter; the per-attempt timeout is inside it (a drop)."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)  # the behaviour under test: a call slower than its timeout
        return "done"

    windows = _Windows()
    limiter = AdaptiveLimiter("guarded", algorithm=windows, window_s=1e-6, min_samples=1)
    guard = Guard("call", retry=FAST, concurrency=limiter, timeout_s=0.05)
    with capture_events() as events:
        assert asyncio.run(guard.acall(slow_then_fast)) == "done"
    assert calls == 2
    assert [type(e).__name__ for e in events if type(e).__name__ in {"ConcurrencyAdmitted", "ConcurrencyReleased"}] == [
        "ConcurrencyAdmitted",
        "ConcurrencyReleased",
    ] * 2
    assert sum(w.drops for w in windows.seen) == 1
    assert limiter.in_flight == 0
    assert "concurrency=AdaptiveLimiter" in repr(guard)


def test_async_timeout_is_per_attempt() -> None:
    """timeout_s bounds each async attempt; a timed-out attempt is retried like any timeout."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)  # the behaviour under test: a slow attempt the timeout cancels
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


def _retry_events(events: list[Any]) -> list[Any]:
    return [e for e in events if type(e).__name__.startswith("Retry")]


def _outcome(run: Callable[[], Any]) -> Any:
    try:
        result = run()
    except Exception as exc:  # noqa: BLE001 - the outcome is compared, whatever it is
        return type(exc).__name__
    return result.status_code if isinstance(result, Status) else result


@pytest.mark.parametrize(
    "script",
    [
        ("ok",),
        (ConnectionError("a"), "ok"),
        (ConnectionError("a"), ConnectionError("b"), ConnectionError("c")),
        (ValueError("not retryable"),),
        (Status(503), Status(503), Status(503)),
        (Status(503), "ok"),
    ],
    ids=["first-try", "after-retry", "exhausted", "not-retryable", "rejected-results", "rejected-then-ok"],
)
def test_guard_retries_exactly_like_a_retry_policy(through, script: tuple[Any, ...]) -> None:
    """Guard runs the retry loop @retry runs: same attempts, same retry events, same outcome."""
    policy = commtel.RetryPolicy(FAST, operation="op", platform="sim")
    plain, guarded = Flaky(*script), Flaky(*script)
    with capture_events() as policy_events:
        if through.__name__ == "sync":
            expected = _outcome(lambda: policy.call(plain.sync))
        else:
            expected = _outcome(lambda: asyncio.run(policy.acall(plain.async_)))
    guard = Guard("op", platform="sim", retry=FAST, span=False)
    with capture_events() as guard_events:
        got = _outcome(lambda: through(guard, guarded))
    assert got == expected
    assert guarded.calls == plain.calls
    assert _retry_events(guard_events) == _retry_events(policy_events)
    assert _retry_events(guard_events)  # a RetryCallFinished at least: the comparison saw something


def test_exhausted_result_return_gives_the_last_result_after_the_same_events(through) -> None:
    """exhausted_result="return" changes only the outcome: the policy still gives up and says so."""
    last = Status(503)
    guard = Guard("get", platform="sim", retry=FAST, exhausted_result="return", span=False)
    with capture_events() as events:
        assert through(guard, Flaky(Status(503), Status(503), last)) is last
    names = [type(e).__name__ for e in _retry_events(events)]
    assert names == ["RetryScheduled", "RetryScheduled", "RetryGaveUp", "RetryCallFinished"]
    assert _retry_events(events)[-1].result == "exhausted"


def test_first_try_success_builds_no_retry_state(through, monkeypatch) -> None:
    """A call accepted on its first attempt never begins a RetryCall; a failed one does."""
    begun: list[str] = []
    original = RetryCore.begin

    def counting(self: RetryCore, started: float) -> Any:
        begun.append(self.operation)
        return original(self, started)

    monkeypatch.setattr(RetryCore, "begin", counting)
    guard = Guard("op", retry=FAST, span=False)
    assert through(guard, Flaky("ok")) == "ok"
    assert begun == []
    assert through(guard, Flaky(ConnectionError("x"), "ok")) == "ok"
    assert begun == ["op"]


def test_without_retry_an_error_is_raised_after_one_attempt(through, registry) -> None:
    """retry=None: one attempt, its exception unchanged, and the call still completes as an error."""
    guard = Guard("once", platform="sim", retry=None)
    flaky = Flaky(ConnectionError("down"), "never")
    with pytest.raises(ConnectionError):
        through(guard, flaky)
    assert flaky.calls == 1
    labels = {"operation": "once", "platform": "sim", "outcome": "error"}
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", labels) == 1


def test_a_custom_listener_sees_every_guard_call(through, spans) -> None:
    """Guard completes each call with OperationCompleted: successes, failures, their span."""
    seen: list[Any] = []
    commtel.events.set_listeners([seen.append])
    guard = Guard("fetch", platform="sim", retry=None)
    assert through(guard, Flaky("ok")) == "ok"
    with pytest.raises(ValueError, match="bad"):
        through(guard, Flaky(ValueError("bad")))
    completed = [e for e in seen if isinstance(e, OperationCompleted)]
    assert [(e.operation, e.platform, e.success, e.error_type) for e in completed] == [
        ("fetch", "sim", True, None),
        ("fetch", "sim", False, "ValueError"),
    ]
    assert all(e.duration_s >= 0 for e in completed)
    finished = [s for s in spans.get_finished_spans() if s.name == "fetch"]
    assert [e.span.get_span_context().span_id for e in completed] == [s.context.span_id for s in finished]


def test_listeners_off_turns_the_guard_duration_off(through, registry) -> None:
    """set_listeners([]) stops commtel_operation_duration_seconds for Guard; None brings it back."""
    labels = {"operation": "fetch", "platform": "sim", "outcome": "success"}
    guard = Guard("fetch", platform="sim", retry=FAST)
    commtel.events.set_listeners([])
    through(guard, Flaky("ok"))
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", labels) is None
    commtel.events.set_listeners(None)
    through(guard, Flaky("ok"))
    assert registry.get_sample_value("commtel_operation_duration_seconds_count", labels) == 1


def test_duration_sample_carries_the_call_trace_as_exemplar(spans, registry) -> None:
    """The duration bucket of a traced guard call links to that call's trace (OpenMetrics exemplar)."""
    from prometheus_client.openmetrics.exposition import generate_latest

    Guard("traced", platform="sim", retry=FAST).call(lambda: 1)
    [span] = [s for s in spans.get_finished_spans() if s.name == "traced"]
    text = generate_latest(registry).decode()
    buckets = [line for line in text.splitlines() if line.startswith("commtel_operation_duration_seconds_bucket")]
    linked = [line for line in buckets if f'trace_id="{span.context.trace_id:032x}"' in line]
    assert len(linked) == 1
    assert f'span_id="{span.context.span_id:016x}"' in linked[0]
