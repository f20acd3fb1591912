"""Redis behind Sentinel: a killed or demoted primary is left for the promoted one, sync and asyncio."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from commtel import CircuitBreaker, RateLimiter
from commtel.ratelimit import RedisBackend, SlidingWindow
from tests.harness.procs import RedisSentinelGroup
from tests.harness.waiting import eventually


LIMIT = 20


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread for the whole test, so asyncio connections outlive the failover."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(30)


def _first_admission(decide: Callable[[], bool], timeout: float = 30.0) -> float:
    """Decide until one is admitted (fail-closed: refusals until Redis answers); when that was."""
    if not eventually(decide, timeout=timeout, interval=0.005):
        msg = "no decision was admitted"
        raise AssertionError(msg)
    return time.monotonic()


def _limiter(url: str, name: str) -> RateLimiter:
    return RateLimiter(
        SlidingWindow(LIMIT, 300.0), name=name, backend=RedisBackend(url, fail_open=False, timeout_s=0.5)
    )


def test_after_the_primary_is_killed_decisions_are_exact_again_within_5s_of_the_promotion(
    sentinel_group: RedisSentinelGroup, loop: asyncio.AbstractEventLoop
) -> None:
    """SIGKILL the primary: fail-closed refusals until Sentinel promotes the replica, then exact decisions
    on the new primary (sync and asyncio), with the units taken before the kill still counted."""
    sync = _limiter(sentinel_group.url, "ha-sync")
    aio = _limiter(sentinel_group.url, "ha-async")
    assert sum(sync.try_acquire("before").allowed for _ in range(10)) == 10
    assert sum(_on(loop, aio.atry_acquire("before")).allowed for _ in range(10)) == 10
    primary = sentinel_group.primary
    assert primary.client().execute_command("WAIT", 1, 5000) == 1  # the replica has every unit taken

    old_port = sentinel_group.primary_port()
    primary.signal(signal.SIGKILL)
    admitted: dict[str, float] = {}
    hammers = [
        threading.Thread(
            target=lambda: admitted.__setitem__("sync", _first_admission(lambda: sync.try_acquire("k").allowed))
        ),
        threading.Thread(
            target=lambda: admitted.__setitem__(
                "async", _first_admission(lambda: _on(loop, aio.atry_acquire("k")).allowed)
            )
        ),
    ]
    for hammer in hammers:
        hammer.start()
    promoted = sentinel_group.wait_promotion(old_port)
    for hammer in hammers:
        hammer.join()
    assert sentinel_group.primary_port() == sentinel_group.replica.port
    assert admitted["sync"] - promoted <= 5.0
    assert admitted["async"] - promoted <= 5.0
    # Exact again: the window holds what was taken before the kill, and admits exactly the rest.
    assert sum(sync.try_acquire("before").allowed for _ in range(LIMIT)) == LIMIT - 10
    assert sum(_on(loop, aio.atry_acquire("before")).allowed for _ in range(LIMIT)) == LIMIT - 10
    assert sum(sync.try_acquire("k").allowed for _ in range(LIMIT)) == LIMIT - 1
    assert sum(_on(loop, aio.atry_acquire("k")).allowed for _ in range(LIMIT)) == LIMIT - 1


def test_a_demoted_primary_is_left_for_the_promoted_one(
    sentinel_group: RedisSentinelGroup, loop: asyncio.AbstractEventLoop
) -> None:
    """A manual failover demotes the primary (still running: its clients are killed, writes answer
    READONLY): connections to it are dropped and the new primary asked, without a single failed decision."""
    sync = _limiter(sentinel_group.url, "demoted-sync")
    aio = _limiter(sentinel_group.url, "demoted-async")
    breaker = CircuitBreaker("demoted", failure_threshold=1, redis=sentinel_group.url, on_backend_error="reject")
    assert sync.try_acquire("k") and _on(loop, aio.atry_acquire("k")) and breaker.call(lambda: 1) == 1
    old_port = sentinel_group.primary_port()
    sentinel = sentinel_group.sentinel.client()
    sentinel.execute_command("SENTINEL", "FAILOVER", sentinel_group.service)
    sentinel_group.wait_promotion(old_port)
    old = sentinel_group.primary.client()
    # Sentinel reconfigures the old primary as a replica of the new one.
    assert eventually(lambda: old.info("replication")["role"] == "slave", timeout=30)
    errors_before = sync.store._failing or aio.store._failing  # noqa: SLF001 - neither failed so far
    assert not errors_before
    assert sum(sync.try_acquire("k").allowed for _ in range(LIMIT)) == LIMIT - 1
    assert sum(_on(loop, aio.atry_acquire("k")).allowed for _ in range(LIMIT)) == LIMIT - 1
    assert breaker.call(lambda: 2) == 2
    assert not sync.store._failing and not aio.store._failing  # noqa: SLF001 - READONLY never reached them
