"""Circuit-breaker behaviour through the sync and async drivers (fake clock unless threads need real time)."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from prometheus_client import CollectorRegistry

import commtel

from commtel import CircuitBreaker, CircuitOpenError
from commtel.telemetry import start_span
from tests.breaker.helpers import race_probes
from tests.harness.clock import FakeClock
from tests.retry.helpers import Driver


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    """The same behaviour through the sync and the async driver."""
    return Driver(request.param)


def _fail() -> None:
    raise ConnectionError("down")


def _ok() -> str:
    return "ok"


def _trip(driver: Driver, breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            driver.call(breaker, _fail)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_opens_after_consecutive_failures_and_rejects(
    driver: Driver, clock: FakeClock, registry: CollectorRegistry
) -> None:
    """N consecutive failures open it; then calls fail fast with CircuitOpenError saying when it probes."""
    breaker = CircuitBreaker("api", failure_threshold=3, recovery_timeout=30)
    _trip(driver, breaker, 3)
    assert breaker.state == "open"
    clock.advance(10)
    called = []
    with pytest.raises(CircuitOpenError) as info:
        driver.call(breaker, lambda: called.append(1))
    assert called == []
    assert info.value.retry_after_s == pytest.approx(20)
    assert "20.000s" in str(info.value)
    assert _sample(registry, "commtel_circuit_calls_total", breaker="api", result="rejected") == 1
    assert _sample(registry, "commtel_circuit_calls_total", breaker="api", result="failure") == 3
    assert _sample(registry, "commtel_circuit_state", breaker="api") == 2  # open
    assert (
        _sample(registry, "commtel_circuit_transitions_total", breaker="api", from_state="closed", to_state="open") == 1
    )


def test_success_resets_consecutive_count(driver: Driver, clock: FakeClock) -> None:
    """A success between failures resets the consecutive-failure count."""
    breaker = CircuitBreaker("api", failure_threshold=2)
    _trip(driver, breaker, 1)
    driver.call(breaker, _ok)
    _trip(driver, breaker, 1)
    assert breaker.state == "closed"


def test_half_open_probe_closes_or_reopens(driver: Driver, clock: FakeClock) -> None:
    """After the recovery timeout one probe is admitted: success closes, failure reopens."""
    breaker = CircuitBreaker("api", failure_threshold=1, recovery_timeout=5)
    _trip(driver, breaker, 1)
    clock.advance(5)
    _trip(driver, breaker, 1)  # the probe fails
    assert breaker.state == "open"
    clock.advance(5)
    assert driver.call(breaker, _ok) == "ok"
    assert breaker.state == "closed"


def test_failure_rate_count_window_needs_minimum_calls(driver: Driver, clock: FakeClock) -> None:
    """The failure rate trips only once the count window holds minimum_calls."""
    breaker = CircuitBreaker(
        "rate", failure_threshold=None, failure_rate_threshold=0.5, window_size=10, minimum_calls=4
    )
    for fn in (_ok, _fail, _ok):
        try:
            driver.call(breaker, fn)
        except ConnectionError:
            pass
    assert breaker.state == "closed"  # 1/3 failed and only 3 calls
    _trip(driver, breaker, 1)  # 2/4 failed
    assert breaker.state == "open"


def test_failure_rate_time_window_forgets_old_calls(driver: Driver, clock: FakeClock) -> None:
    """In a time window, failures older than the window no longer count."""
    breaker = CircuitBreaker(
        "tw", failure_threshold=None, failure_rate_threshold=0.6, window_type="time", window_size=10, minimum_calls=3
    )
    _trip(driver, breaker, 2)
    clock.advance(20)
    driver.call(breaker, _ok)
    driver.call(breaker, _ok)
    _trip(driver, breaker, 1)
    assert breaker.state == "closed"  # 1/3 within the window
    _trip(driver, breaker, 2)
    assert breaker.state == "open"  # 3/5


def test_slow_calls_count_as_failures(driver: Driver, clock: FakeClock, registry: CollectorRegistry) -> None:
    """A call slower than slow_call_duration is recorded as slow and counts toward tripping."""
    breaker = CircuitBreaker("slow", failure_threshold=2, slow_call_duration=1.0)

    def slow() -> str:
        clock.advance(2)
        return "late"

    assert driver.call(breaker, slow) == "late"
    driver.call(breaker, slow)
    assert breaker.state == "open"
    assert _sample(registry, "commtel_circuit_calls_total", breaker="slow", result="slow") == 2


def test_excluded_and_non_failure_exceptions(driver: Driver, clock: FakeClock) -> None:
    """Excluded exceptions count as nothing; exceptions outside failure_on count as successes."""
    breaker = CircuitBreaker("ex", failure_threshold=2, failure_on=ConnectionError, excluded_exceptions=[KeyError])
    _trip(driver, breaker, 1)
    with pytest.raises(KeyError):
        driver.call(breaker, lambda: {}["x"])
    _trip(driver, breaker, 1)
    assert breaker.state == "open"  # the KeyError did not reset the count
    breaker.reset()
    _trip(driver, breaker, 1)
    with pytest.raises(ValueError):
        driver.call(breaker, lambda: int("x"))
    _trip(driver, breaker, 1)
    assert breaker.state == "closed"  # the ValueError counted as a success


def test_5xx_results_are_failures(driver: Driver, clock: FakeClock) -> None:
    """Returned responses with a 5xx status count as failures by default."""
    breaker = CircuitBreaker("http", failure_threshold=2)
    driver.call(breaker, lambda: httpx.Response(503))
    driver.call(breaker, lambda: httpx.Response(500))
    assert breaker.state == "open"


def test_health_check_must_pass_before_closing(driver: Driver, clock: FakeClock) -> None:
    """After successful probes the breaker closes only once the health check returns true."""
    healthy = [False]
    checks: list[bool] = []

    def check() -> bool:
        checks.append(healthy[0])
        return healthy[0]

    breaker = CircuitBreaker("hc", failure_threshold=1, recovery_timeout=5, health_check=check)
    _trip(driver, breaker, 1)
    clock.advance(5)
    assert driver.call(breaker, _ok) == "ok"
    assert breaker.state == "open"  # probe fine, health check failed
    healthy[0] = True
    clock.advance(5)
    driver.call(breaker, _ok)
    assert breaker.state == "closed"
    assert checks == [False, True]


def test_async_health_check(clock: FakeClock) -> None:
    """An async health check is awaited on the async path."""

    async def check() -> bool:
        await asyncio.sleep(0)
        return True

    async def ok() -> str:
        return "ok"

    breaker = CircuitBreaker("ahc", failure_threshold=1, recovery_timeout=1, health_check=check)
    _trip(Driver("sync"), breaker, 1)
    clock.advance(1)
    assert asyncio.run(breaker.acall(ok)) == "ok"
    assert breaker.state == "closed"


def test_force_open_and_reset(driver: Driver, clock: FakeClock) -> None:
    """force_open rejects even after the recovery timeout; reset closes."""
    breaker = CircuitBreaker("f", recovery_timeout=1)
    breaker.force_open()
    clock.advance(100)
    with pytest.raises(CircuitOpenError):
        driver.call(breaker, _ok)
    breaker.reset()
    assert driver.call(breaker, _ok) == "ok"


def test_state_listeners_and_span_events(clock: FakeClock, spans) -> None:
    """State listeners hear every transition; transitions and rejections are events on the call's span."""
    heard: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "l", failure_threshold=1, recovery_timeout=1, listeners=[lambda b, old, new: heard.append((old, new))]
    )
    with start_span("call"):
        _trip(Driver("sync"), breaker, 1)
        with pytest.raises(CircuitOpenError):
            breaker.call(_ok)
    clock.advance(1)
    breaker.call(_ok)
    assert heard == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    (span,) = [s for s in spans.get_finished_spans() if s.name == "call"]
    names = [e.name for e in span.events]
    assert names == ["commtel.circuit.state_changed", "commtel.circuit.rejected"]
    assert span.events[1].attributes["commtel.circuit.retry_after_s"] == 1.0


def test_a_failing_listener_does_not_break_calls(clock: FakeClock) -> None:
    """A state listener that raises is logged and ignored."""

    def bad(*args: object) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("bad", failure_threshold=1, listeners=[bad])
    _trip(Driver("sync"), breaker, 1)
    assert breaker.state == "open"


def test_decorator_on_methods(driver: Driver, clock: FakeClock) -> None:
    """The decorator works on sync and async methods and keeps the name."""
    breaker = CircuitBreaker("m")

    class Client:
        @breaker
        def get(self) -> object:
            return self

        @breaker
        async def aget(self) -> object:
            return self

    client = Client()
    assert driver.run(client.get if driver.kind == "sync" else client.aget) is client
    assert Client.aget.__name__ == "aget"


def test_exactly_n_probes_under_8_threads(registry: CollectorRegistry, clock: FakeClock) -> None:
    """With 8 threads racing a half-open breaker, exactly half_open_max_calls probes run."""
    breaker = CircuitBreaker("probe", failure_threshold=1, recovery_timeout=0.05, half_open_max_calls=3)
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    clock.advance(0.06)
    ran, rejected = race_probes(breaker)
    assert len(ran) == 3
    assert len(rejected) == 5
    assert breaker.state == "closed"


def test_no_lock_held_while_the_call_runs() -> None:
    """Four threads through one closed breaker overlap: the call does not run under a lock."""
    breaker = CircuitBreaker("par")
    all_inside = threading.Barrier(4, timeout=5)  # breaks (and the calls raise) unless all 4 are inside at once
    results: list[bool] = []

    def work() -> None:
        all_inside.wait()
        results.append(True)

    threads = [threading.Thread(target=breaker.call, args=(work,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_invalid_configuration() -> None:
    """Nonsense thresholds fail at construction."""
    with pytest.raises(commtel.ConfigurationError, match="failure_rate_threshold"):
        CircuitBreaker(failure_rate_threshold=1.5)
    with pytest.raises(commtel.ConfigurationError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
