"""Retry behaviour, run once through the sync and once through the async driver (fake clock)."""

from __future__ import annotations

import time

from datetime import timedelta

import httpx
import pytest

from prometheus_client import CollectorRegistry

import commtel
import commtel.events

from commtel import RetryBudget, RetryConfig, RetryExhausted, RetryPolicy, retry
from commtel.errors import RateLimitedByServer, RetryBudgetExhausted
from commtel.retries import get_retry_stats_detailed, get_retry_stats_summary
from commtel.telemetry import start_span
from commtel.testing import capture_events
from tests.harness.clock import FakeClock
from tests.retry.helpers import Driver, Flaky


def _calls(registry: CollectorRegistry, op: str, result: str, platform: str = "") -> float:
    return (
        registry.get_sample_value(
            "commtel_retry_calls_total", {"operation": op, "platform": platform, "result": result}
        )
        or 0.0
    )


def test_first_try_success_counts_once(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """A call that succeeds at once runs once, never sleeps and counts as success_first_try."""
    body = Flaky()
    fn = retry(operation="op")(driver.fn(body))
    assert driver.run(fn) == "ok"
    assert body.calls == 1
    assert clock.sleeps == []
    assert _calls(registry, "op", "success_first_try") == 1


def test_retries_then_succeeds(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """Retryable errors are retried with growing delays until the call succeeds."""
    body = Flaky(ConnectionError("a"), TimeoutError("b"))
    policy = RetryPolicy(operation="op", platform="p", max_attempts=5, base_delay=1, jitter=False)
    assert driver.call(policy, body) == "ok"
    assert body.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    assert _calls(registry, "op", "success_after_retry", "p") == 1
    attempts = {"operation": "op", "platform": "p", "reason": "ConnectionError"}
    assert registry.get_sample_value("commtel_retry_attempts_total", attempts) == 1
    assert registry.get_sample_value("commtel_retry_backoff_seconds_sum", {"operation": "op", "platform": "p"}) == 3.0


def test_exhausted_reraises_last_original(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """When attempts run out the last original exception propagates, not a wrapper."""
    last = ConnectionError("third")
    body = Flaky(ConnectionError("first"), ConnectionError("second"), last)
    policy = RetryPolicy(operation="op", max_attempts=3, base_delay=0.5, jitter=False)
    with pytest.raises(ConnectionError) as info:
        driver.call(policy, body)
    assert info.value is last
    assert body.calls == 3
    assert clock.sleeps == [0.5, 1.0]
    assert _calls(registry, "op", "exhausted") == 1


def test_not_retryable_fails_at_once(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """An error no rule matches is raised after one attempt and counted as not_retryable."""
    body = Flaky(KeyError("x"))
    with pytest.raises(KeyError):
        driver.call(RetryPolicy(operation="op"), body)
    assert body.calls == 1
    assert _calls(registry, "op", "not_retryable") == 1


def test_on_exception_types_and_message_substrings(driver: Driver, clock: FakeClock) -> None:
    """`on` types and `retry_on_specific_errors` substrings make other errors retryable."""
    body = Flaky(KeyError("x"), ValueError("database is locked"))
    policy = RetryPolicy(on=KeyError, retry_on_specific_errors=["is locked"], max_attempts=3, base_delay=0)
    assert driver.call(policy, body) == "ok"
    assert body.calls == 3


def test_flags_turn_families_off(driver: Driver, clock: FakeClock) -> None:
    """retry_on_timeout=False makes timeouts fail at once."""
    body = Flaky(TimeoutError("slow"))
    with pytest.raises(TimeoutError):
        driver.call(RetryPolicy(retry_on_timeout=False), body)
    assert body.calls == 1


def test_http_status_results_are_retried(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """A returned response with status 503 is retried; its status is the reason label."""
    body = Flaky(httpx.Response(503), httpx.Response(200))
    result = driver.call(RetryPolicy(operation="h", base_delay=0.1, jitter=False), body)
    assert result.status_code == 200
    assert (
        registry.get_sample_value("commtel_retry_attempts_total", {"operation": "h", "platform": "", "reason": "503"})
        == 1
    )


def test_result_exhaustion_raises_retry_exhausted(driver: Driver, clock: FakeClock) -> None:
    """Retries that run out on a rejected result raise RetryExhausted chaining the last error."""
    earlier = ConnectionError("down")
    body = Flaky(earlier, "bad", "bad")
    policy = RetryPolicy(operation="r", retry_on_result=lambda v: v == "bad", max_attempts=3, base_delay=0)
    with pytest.raises(RetryExhausted) as info:
        driver.call(policy, body)
    assert info.value.last_result == "bad"
    assert info.value.attempts == 3
    assert info.value.__cause__ is earlier


def test_rate_limit_error_waits_retry_after(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """RateLimitedByServer(retry_after) makes the retry wait exactly the server's time (capped)."""
    body = Flaky(RateLimitedByServer("twitter", retry_after=7), RateLimitedByServer("twitter", retry_after=500))
    policy = RetryPolicy(operation="t", max_attempts=3, base_delay=1, max_retry_after=60)
    assert driver.call(policy, body) == "ok"
    assert clock.sleeps == [7.0, 60.0]
    assert (
        registry.get_sample_value(
            "commtel_retry_attempts_total", {"operation": "t", "platform": "", "reason": "rate_limited"}
        )
        == 2
    )


def test_retry_after_header_seconds_and_date(driver: Driver, clock: FakeClock) -> None:
    """Retry-After on a 429 response is read as delta-seconds and as an HTTP-date."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    body = Flaky(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(429, headers={"Retry-After": date}))
    result = driver.call(RetryPolicy(max_attempts=3), body)
    assert result == "ok"
    assert clock.sleeps[0] == 3.0
    assert 27 <= clock.sleeps[1] <= 31


def test_deadline_stops_retries(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """No retry starts after the total deadline; the last error propagates."""
    body = Flaky(*[ConnectionError(str(i)) for i in range(10)])
    policy = RetryPolicy(operation="d", max_attempts=10, base_delay=1, jitter=False, deadline=timedelta(seconds=5))
    with pytest.raises(ConnectionError):
        driver.call(policy, body)
    assert clock.sleeps == [1.0, 2.0]  # a third wait of 4 s would end after 7 s > 5 s
    assert _calls(registry, "d", "exhausted") == 1


def test_budget_stops_retry_storm(driver: Driver, clock: FakeClock) -> None:
    """With the budget spent, a retry is denied with RetryBudgetExhausted chaining the error."""
    budget = RetryBudget("api", ratio=0.0, min_retries=2, period=10)
    policy = RetryPolicy(operation="b", budget=budget, max_attempts=10, base_delay=0.1)
    error = ConnectionError("down")
    with capture_events() as events, pytest.raises(RetryBudgetExhausted) as info:
        driver.call(policy, Flaky(error, error, error, error))
    assert info.value.__cause__ is error
    assert budget.denied == 1
    assert len(clock.sleeps) == 2
    assert any(type(e).__name__ == "RetryDenied" for e in events)
    assert get_retry_stats_summary()["budget_denied"] == 1


def test_budget_ratio_refills_with_calls(clock: FakeClock) -> None:
    """Successful calls earn retries at the configured ratio; old calls slide out of the window."""
    budget = RetryBudget("r", ratio=0.5, min_retries=0, period=10, buckets=10)
    for _ in range(4):
        budget.record_call(clock.now)
    assert [budget.try_acquire(clock.now) for _ in range(3)] == [True, True, False]
    clock.advance(11)
    assert budget.try_acquire(clock.now) is False
    assert budget.snapshot(clock.now)["calls"] == 0


def test_block_form(driver: Driver, clock: FakeClock) -> None:
    """`for attempt in retrying(...): with attempt:` retries the block like the decorator."""
    body = Flaky(ConnectionError("a"), ConnectionError("b"))
    policy = RetryPolicy(operation="blk", max_attempts=3, base_delay=1, jitter=False)
    assert driver.block(policy, lambda number: body()) == "ok"
    assert body.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    assert get_retry_stats_detailed()["operations"]["blk"]["success_after_retry"] == 1


def test_block_form_reraises_when_exhausted(driver: Driver, clock: FakeClock) -> None:
    """The block form lets the last original error out when retries run out."""
    policy = RetryPolicy(max_attempts=2, base_delay=0)
    with pytest.raises(ConnectionError, match="2"):
        driver.block(policy, lambda number: (_ for _ in ()).throw(ConnectionError(str(number))))


def test_methods_keep_self_and_signature(driver: Driver, clock: FakeClock) -> None:
    """Decorated methods receive self; the wrapper keeps name and coroutine-ness."""
    body = Flaky(ConnectionError("x"))

    class Client:
        @retry(max_attempts=2, base_delay=0)
        def get(self, n: int) -> tuple[object, int, str]:
            return self, n, body()

        @retry(max_attempts=2, base_delay=0)
        async def aget(self, n: int) -> tuple[object, int, str]:
            return self, n, body()

    client = Client()
    method = client.get if driver.kind == "sync" else client.aget
    assert driver.run(method, 5) == (client, 5, "ok")
    assert Client.get.__name__ == "get"
    assert Client.aget.__qualname__.endswith("Client.aget")


def test_each_retry_is_a_span_event(driver: Driver, clock: FakeClock, spans) -> None:
    """Each retry adds a commtel.retry event with attempt, delay and reason to the current span."""
    body = Flaky(ConnectionError("a"), httpx.Response(502))
    with start_span("outer"):
        driver.call(RetryPolicy(operation="s", base_delay=1, jitter=False), body)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "outer"]
    events = [e for e in span.events if e.name == "commtel.retry"]
    assert [e.attributes["commtel.retry.attempt"] for e in events] == [1, 2]
    assert [e.attributes["commtel.retry.delay_s"] for e in events] == [1.0, 2.0]
    assert [e.attributes["commtel.retry.reason"] for e in events] == ["ConnectionError", "502"]


def test_listeners_off_still_retries_and_counts_stats(
    driver: Driver, clock: FakeClock, registry: CollectorRegistry
) -> None:
    """With set_listeners([]) nothing is emitted, but retries and statistics work."""
    commtel.events.set_listeners([])
    body = Flaky(ConnectionError("a"))
    assert driver.call(RetryPolicy(operation="quiet", base_delay=0), body) == "ok"
    assert _calls(registry, "quiet", "success_after_retry") == 0
    assert get_retry_stats_detailed()["operations"]["quiet"]["retries"] == 1


def test_invalid_configuration_is_rejected() -> None:
    """Bad values fail at construction with a ConfigurationError naming the field."""
    with pytest.raises(commtel.ConfigurationError, match="max_attempts"):
        RetryConfig(max_attempts=0)
    with pytest.raises(commtel.ConfigurationError, match="jitter"):
        RetryConfig(jitter="sideways")  # type: ignore[arg-type]
