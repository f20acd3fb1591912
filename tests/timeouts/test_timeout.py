"""Timeouts: async calls cancelled at the deadline, sync calls see it, nested deadlines keep the earlier one."""

from __future__ import annotations

import asyncio
import time

import pytest

from prometheus_client import CollectorRegistry

from commtel.errors import ConfigurationError
from commtel.telemetry import start_span
from commtel.testing import capture_events
from commtel.timeouts import Timeout, TimeoutExceeded, TimeoutExpired, current_deadline, remaining
from tests.harness.clock import FakeClock


def test_async_call_is_cancelled_when_the_timeout_expires(registry: CollectorRegistry, spans) -> None:
    """The awaited call is cancelled, TimeoutExceeded (a TimeoutError) raised, counted and marked on the span."""
    cancelled = []

    async def slow() -> str:
        try:
            await asyncio.sleep(5)  # the behaviour under test: a call slower than its timeout
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    async def main() -> None:
        with start_span("op"):
            await Timeout(0.05, name="search", scope="attempt").acall(slow)

    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        asyncio.run(main())
    assert time.monotonic() - started < 2
    assert cancelled == [True]
    error = info.value
    assert isinstance(error, TimeoutExceeded)
    assert (error.timeout, error.scope, error.timeout_s) == ("search", "attempt", 0.05)
    assert str(error) == "attempt timeout 'search' of 0.05s expired"
    assert registry.get_sample_value("commtel_timeouts_total", {"timeout": "search", "scope": "attempt"}) == 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "op"]
    (event,) = [e for e in span.events if e.name == "commtel.timeout.expired"]
    assert event.attributes["commtel.timeout.scope"] == "attempt"


def test_async_call_within_the_timeout_returns_and_sees_its_deadline() -> None:
    """A call that finishes in time returns its result; inside it, remaining() is the time left."""
    seen: list[float | None] = []

    async def quick() -> str:
        seen.append(remaining())
        return "ok"

    assert asyncio.run(Timeout(5.0).acall(quick)) == "ok"
    assert seen[0] is not None and 4 < seen[0] <= 5
    assert remaining() is None and current_deadline() is None


def test_a_timeout_error_raised_by_the_call_itself_passes_through() -> None:
    """Only our own expiry becomes TimeoutExceeded; the call's own TimeoutError is not relabelled or counted."""

    async def own() -> None:
        raise TimeoutError("socket timed out")

    with capture_events() as events, pytest.raises(TimeoutError, match="socket timed out") as info:
        asyncio.run(Timeout(5.0).acall(own))
    assert not isinstance(info.value, TimeoutExceeded)
    assert not [e for e in events if isinstance(e, TimeoutExpired)]


def test_nested_timeouts_keep_the_earlier_deadline_and_report_it(clock: FakeClock) -> None:
    """An inner timeout cannot extend an outer one; when the outer binds, the expiry is reported in its name."""
    seen = []

    def inner() -> None:
        seen.append((remaining(), current_deadline()))

    total = Timeout(2.0, name="total", scope="total")
    attempt = Timeout(10.0, name="attempt", scope="attempt")
    total.call(attempt.call, inner)
    left, deadline = seen[0]
    assert left == 2.0
    assert deadline is not None and (deadline.name, deadline.scope, deadline.length_s) == ("total", "total", 2.0)


def test_nested_async_timeouts_cancel_at_the_outer_deadline() -> None:
    """An inner 10 s attempt timeout inside a 50 ms total one is cut at 50 ms, reported as the total."""

    async def sleepy() -> None:
        await asyncio.sleep(5)  # the behaviour under test: a call slower than its timeout

    async def main() -> None:
        await Timeout(0.05, name="outer").acall(Timeout(10.0, name="inner", scope="attempt").acall, sleepy)

    with capture_events() as events, pytest.raises(TimeoutExceeded) as info:
        asyncio.run(main())
    assert (info.value.timeout, info.value.scope) == ("outer", "total")
    assert [(e.timeout, e.scope) for e in events if isinstance(e, TimeoutExpired)] == [("outer", "total")]


def test_sync_call_runs_with_the_deadline_published_and_is_refused_once_it_passed(clock: FakeClock) -> None:
    """Sync: not interrupted, the deadline is visible inside, and a call starting after it is refused."""
    timeout = Timeout(1.0, name="batch")
    assert timeout.call(remaining) == 1.0

    def late_start() -> str:
        clock.advance(2.0)  # the enclosing timeout has passed when the inner call starts
        return Timeout(5.0).call(lambda: "ran")

    with capture_events() as events, pytest.raises(TimeoutExceeded) as info:
        timeout.call(late_start)
    assert info.value.timeout == "batch"
    assert [e.timeout for e in events if isinstance(e, TimeoutExpired)] == ["batch"]

    @Timeout(1.0)
    def decorated() -> str:
        clock.advance(3.0)  # overruns: a sync call is not interrupted, its result is kept
        return "done"

    assert decorated() == "done"


def test_async_decorator_and_timedelta() -> None:
    """The decorator picks the async driver; durations may be timedelta."""
    from datetime import timedelta

    @Timeout(timedelta(milliseconds=30))
    async def slow() -> None:
        await asyncio.sleep(5)  # the behaviour under test: a call slower than its timeout

    with pytest.raises(TimeoutExceeded):
        asyncio.run(slow())


@pytest.mark.parametrize(
    ("seconds", "scope", "message"),
    [(0, "total", "must be > 0 seconds"), (-1, "total", "must be >= 0"), (1, "call", "scope must be")],
)
def test_bad_options_raise_configuration_error(seconds: float, scope: str, message: str) -> None:
    """Zero, negative or NaN lengths and unknown scopes fail at construction."""
    with pytest.raises(ConfigurationError, match=message):
        Timeout(seconds, scope=scope)  # type: ignore[arg-type]
