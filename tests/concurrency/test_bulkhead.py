"""Bulkhead through its sync and async drivers: refusal, bounded waits, FIFO hand-off, cancellation, telemetry."""

from __future__ import annotations

import asyncio
import threading

import pytest

from prometheus_client import CollectorRegistry

from commtel.concurrency import Bulkhead, ConcurrencyLimitExceeded, ConcurrencyRejected, ConcurrencyWaited
from commtel.errors import ConfigurationError
from commtel.telemetry import start_span
from commtel.testing import capture_events


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_series_exist_at_zero_once_created(registry: CollectorRegistry) -> None:
    """A new bulkhead shows its limit, zero in flight and zero decisions before any call."""
    Bulkhead("reports", max_concurrent=4)
    assert _sample(registry, "commtel_concurrency_limit", limiter="reports", kind="bulkhead") == 4
    assert _sample(registry, "commtel_concurrency_in_flight", limiter="reports") == 0
    for decision in ("admitted", "rejected"):
        assert _sample(registry, "commtel_concurrency_decisions_total", limiter="reports", decision=decision) == 0


def test_full_bulkhead_refuses_at_once_and_says_so(registry: CollectorRegistry) -> None:
    """With max_wait_s=0 the call over the limit is refused without running, counted and explained."""
    bulkhead = Bulkhead("reports", max_concurrent=2)
    ran: list[int] = []
    with bulkhead, bulkhead:
        assert bulkhead.in_flight == 2
        assert _sample(registry, "commtel_concurrency_in_flight", limiter="reports") == 2
        with pytest.raises(ConcurrencyLimitExceeded) as info:
            bulkhead.call(ran.append, 1)
    assert ran == []
    assert str(info.value) == "bulkhead 'reports' is full: 2 calls in flight"
    assert (info.value.limiter, info.value.kind, info.value.limit, info.value.waited_s) == (
        "reports",
        "bulkhead",
        2,
        0.0,
    )
    assert bulkhead.in_flight == 0
    assert _sample(registry, "commtel_concurrency_in_flight", limiter="reports") == 0
    assert _sample(registry, "commtel_concurrency_decisions_total", limiter="reports", decision="admitted") == 2
    assert _sample(registry, "commtel_concurrency_decisions_total", limiter="reports", decision="rejected") == 1


def test_slot_is_released_when_the_call_raises() -> None:
    """A failing call gives its slot back (decorator, call and context manager)."""
    bulkhead = Bulkhead("b", max_concurrent=1)

    @bulkhead
    def boom() -> None:
        raise ValueError("boom")

    for attempt in (boom, lambda: bulkhead.call(boom.__wrapped__)):
        with pytest.raises(ValueError, match="boom"):
            attempt()
        assert bulkhead.in_flight == 0


def test_sync_waiter_gets_the_slot_when_it_is_released(registry: CollectorRegistry) -> None:
    """A thread waiting (max_wait_s) is handed the slot as soon as the holder releases it; the wait is measured."""
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=5)
    bulkhead.acquire()
    got = threading.Event()

    def waiter() -> None:
        bulkhead.acquire()
        got.set()
        bulkhead.release()

    thread = threading.Thread(target=waiter)
    with capture_events() as events:
        thread.start()
        while bulkhead.waiting == 0:
            thread.join(0.001)
        assert not got.is_set()
        bulkhead.release()
        thread.join(5)
    assert got.is_set()
    (waited,) = [e for e in events if isinstance(e, ConcurrencyWaited)]
    assert waited.limiter == "b" and waited.waited_s > 0
    assert _sample(registry, "commtel_concurrency_wait_seconds_count", limiter="b") == 1


def test_sync_wait_is_bounded_by_max_wait_s() -> None:
    """No slot within max_wait_s: refused with reason wait_timeout, waited time reported; the queue is left."""
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=0.05)
    bulkhead.acquire()
    with capture_events() as events, pytest.raises(ConcurrencyLimitExceeded) as info:
        bulkhead.acquire()
    assert info.value.waited_s >= 0.05
    assert "after waiting" in str(info.value)
    (rejected,) = [e for e in events if isinstance(e, ConcurrencyRejected)]
    assert rejected.reason == "wait_timeout"
    assert bulkhead.waiting == 0 and bulkhead.in_flight == 1


def test_waiters_are_served_first_come_first_served() -> None:
    """Three threads queue in order; releases serve them in that order."""
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=None)
    bulkhead.acquire()
    order: list[int] = []
    threads = []
    for i in range(3):
        thread = threading.Thread(target=lambda i=i: (bulkhead.acquire(), order.append(i)))
        thread.start()
        threads.append(thread)
        while bulkhead.waiting < i + 1:
            thread.join(0.001)
    for served in range(1, 4):
        bulkhead.release()
        while len(order) < served:
            threads[served - 1].join(0.001)
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2]


def test_max_waiting_bounds_the_queue() -> None:
    """With max_waiting=0 nobody waits: refused at once with reason queue_full."""
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=5, max_waiting=0)
    bulkhead.acquire()
    with capture_events() as events, pytest.raises(ConcurrencyLimitExceeded):
        bulkhead.acquire()
    assert [e.reason for e in events if isinstance(e, ConcurrencyRejected)] == ["queue_full"]


def test_async_refuses_waits_and_hands_off() -> None:
    """Async: over the limit a task waits, and gets the slot the holder releases; the decorator works."""
    bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=5)
    release = asyncio.Event()
    order: list[str] = []

    @bulkhead
    async def work(name: str) -> str:
        order.append(name)
        await release.wait()
        return name

    async def main() -> list[str]:
        first = asyncio.create_task(work("first"))
        second = asyncio.create_task(work("second"))
        while bulkhead.waiting == 0:
            await asyncio.sleep(0)
        assert order == ["first"]
        release.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(main()) == ["first", "second"]
    assert bulkhead.in_flight == 0


def test_async_wait_timeout_and_immediate_refusal() -> None:
    """Async waits are bounded by max_wait_s; with 0 the refusal is immediate."""

    async def main() -> None:
        waiting = Bulkhead("w", max_concurrent=1, max_wait_s=0.05)
        await waiting.aacquire()
        with pytest.raises(ConcurrencyLimitExceeded) as info:
            await waiting.aacquire()
        assert info.value.waited_s >= 0.05
        assert waiting.waiting == 0
        refusing = Bulkhead("r", max_concurrent=1)
        async with refusing:
            with pytest.raises(ConcurrencyLimitExceeded):
                await refusing.acall(asyncio.sleep, 0)

    asyncio.run(main())


def test_cancelled_waiter_leaves_no_slot_behind() -> None:
    """A waiting task that is cancelled leaves the queue; one cancelled right after being handed the slot passes it on."""

    async def main() -> None:
        bulkhead = Bulkhead("b", max_concurrent=1, max_wait_s=None)
        await bulkhead.aacquire()
        waiter = asyncio.create_task(bulkhead.aacquire())
        while not bulkhead.waiting:
            await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert bulkhead.waiting == 0 and bulkhead.in_flight == 1
        # Granted and cancelled in the same loop turn: the slot must go on to the next waiter.
        granted = asyncio.create_task(bulkhead.aacquire())
        third = asyncio.create_task(bulkhead.aacquire())
        while bulkhead.waiting < 2:
            await asyncio.sleep(0)
        bulkhead.release()  # hands the slot to `granted` (its future is set, the task has not run yet)
        granted.cancel()
        with pytest.raises(asyncio.CancelledError):
            await granted
        await asyncio.wait_for(third, 1)  # got the slot `granted` gave back
        assert bulkhead.in_flight == 1
        bulkhead.release()
        assert bulkhead.in_flight == 0

    asyncio.run(main())


def test_a_thread_wakes_a_task_waiting_on_another_loop() -> None:
    """Sync threads and async tasks share one bulkhead: a release from a thread wakes the task's loop."""
    bulkhead = Bulkhead("shared", max_concurrent=1, max_wait_s=5)
    bulkhead.acquire()
    released = threading.Timer(0.05, bulkhead.release)

    async def main() -> None:
        released.start()
        await bulkhead.aacquire()
        bulkhead.release()

    asyncio.run(main())
    released.join()
    assert bulkhead.in_flight == 0


def test_rejection_is_marked_on_the_current_span(spans) -> None:
    """A refusal inside a span adds a commtel.concurrency.rejected event naming the bulkhead."""
    bulkhead = Bulkhead("b", max_concurrent=1)
    with bulkhead, start_span("op"), pytest.raises(ConcurrencyLimitExceeded):
        bulkhead.acquire()
    (span,) = [s for s in spans.get_finished_spans() if s.name == "op"]
    (event,) = [e for e in span.events if e.name == "commtel.concurrency.rejected"]
    assert event.attributes["commtel.concurrency.limiter"] == "b"
    assert event.attributes["commtel.concurrency.reason"] == "full"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent": 0}, "max_concurrent must be an integer >= 1"),
        ({"max_concurrent": 2.5}, "max_concurrent must be an integer >= 1"),
        ({"max_wait_s": -1}, "max_wait_s must be >= 0"),
        ({"max_waiting": -1}, "max_waiting must be an integer >= 0"),
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, object], message: str) -> None:
    """Invalid options fail at construction, and check_options finds them without building one."""
    with pytest.raises(ConfigurationError, match=message):
        Bulkhead("b", **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        Bulkhead.check_options(**options)
    with pytest.raises(TypeError):
        Bulkhead.check_options(max_concurent=3)
