"""Many callers in one process on one Redis key: 300 asyncio tasks and 150 threads, one node and a cluster.

redis-py's pools hold 100 connections; past that a caller must wait (back-pressure), not
fail: a failure would answer by the fail-open policy and over-admit. The timeouts here are
generous because this machine is shared: what is tested is that saturation waits, not
how fast a starved event loop reads its replies.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from prometheus_client import CollectorRegistry

from commtel import CircuitBreaker, CircuitOpenError, RateLimiter
from commtel.ratelimit import RedisBackend, SlidingWindow


TASKS = 300
THREADS = 150
CALLS = 5
LIMIT = 50
TIMEOUT_S = 5.0


@pytest.fixture(params=["single", "cluster"])
def topology_url(request: pytest.FixtureRequest) -> str:
    """A flushed single node's URL, or a flushed 3-node cluster's."""
    return str(request.getfixturevalue("redis_url" if request.param == "single" else "redis_cluster_url"))


def _backend_errors(registry: CollectorRegistry, metric: str, **labels: str) -> float:
    return registry.get_sample_value(metric, {**labels, "backend": "redis"}) or 0.0


def test_300_tasks_on_one_key_admit_exactly_the_limit(topology_url: str, registry: CollectorRegistry) -> None:
    """300 tasks x 5 decisions on a 50-per-minute window: exactly 50 admitted, no backend error."""
    backend = RedisBackend(topology_url, timeout_s=TIMEOUT_S)
    limiter = RateLimiter(SlidingWindow(LIMIT, 60.0), name="tasks", backend=backend)

    async def caller(start: asyncio.Event) -> int:
        await start.wait()
        return sum([(await limiter.atry_acquire("hot")).allowed for _ in range(CALLS)])

    async def main() -> list[int]:
        start = asyncio.Event()
        callers = [asyncio.create_task(caller(start)) for _ in range(TASKS)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*callers)

    assert sum(asyncio.run(main())) == LIMIT
    assert _backend_errors(registry, "commtel_ratelimit_backend_errors_total", limiter="tasks") == 0


def test_150_threads_on_one_key_admit_exactly_the_limit(topology_url: str, registry: CollectorRegistry) -> None:
    """150 threads x 5 decisions: exactly 50 admitted over at most 100 connections, no backend error."""
    backend = RedisBackend(topology_url, timeout_s=TIMEOUT_S)
    limiter = RateLimiter(SlidingWindow(LIMIT, 60.0), name="threads", backend=backend)
    admitted: list[int] = []
    barrier = threading.Barrier(THREADS)

    def caller() -> None:
        barrier.wait()
        admitted.append(sum(limiter.try_acquire("hot").allowed for _ in range(CALLS)))

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == LIMIT
    assert _backend_errors(registry, "commtel_ratelimit_backend_errors_total", limiter="threads") == 0
    link = backend.caller.link
    assert all(slots.created <= 100 for slots in link._nodes.values())  # noqa: SLF001 - the bound holds


def _tripped(url: str, name: str) -> CircuitBreaker:
    breaker = CircuitBreaker(
        name, failure_threshold=1, recovery_timeout=0.2, half_open_max_calls=2, redis=url, redis_timeout=TIMEOUT_S
    )
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    return breaker


def test_300_tasks_get_exactly_the_half_open_probes(topology_url: str, registry: CollectorRegistry) -> None:
    """A shared breaker past its recovery admits exactly half_open_max_calls of 300 racing tasks."""
    breaker = _tripped(topology_url, "probes-tasks")

    async def main() -> tuple[int, int]:
        await asyncio.sleep(0.25)  # the behaviour under test: recovery_timeout passes on the server's clock
        start, release = asyncio.Event(), asyncio.Event()
        ran = rejected = 0

        async def probe() -> None:
            nonlocal ran
            ran += 1
            await release.wait()

        async def caller() -> None:
            nonlocal rejected
            await start.wait()
            try:
                await breaker.acall(probe)
            except CircuitOpenError:
                rejected += 1
            if ran + rejected == TASKS:
                release.set()

        callers = [asyncio.create_task(caller()) for _ in range(TASKS)]
        await asyncio.sleep(0)
        start.set()
        await asyncio.wait_for(asyncio.gather(*callers), 30)
        return ran, rejected

    assert asyncio.run(main()) == (2, TASKS - 2)
    assert breaker.state == "closed"
    assert _backend_errors(registry, "commtel_circuit_backend_errors_total", breaker="probes-tasks") == 0


def test_150_threads_get_exactly_the_half_open_probes(topology_url: str, registry: CollectorRegistry) -> None:
    """A shared breaker past its recovery admits exactly half_open_max_calls of 150 racing threads."""
    breaker = _tripped(topology_url, "probes-threads")
    threading.Event().wait(0.25)
    barrier = threading.Barrier(THREADS)
    release = threading.Event()
    lock = threading.Lock()
    counts = {"ran": 0, "rejected": 0}

    def probe() -> None:
        with lock:
            counts["ran"] += 1
        release.wait(30)

    def caller() -> None:
        barrier.wait()
        try:
            breaker.call(probe)
        except CircuitOpenError:
            with lock:
                counts["rejected"] += 1
        with lock:
            if counts["ran"] + counts["rejected"] == THREADS:
                release.set()

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == {"ran": 2, "rejected": THREADS - 2}
    assert breaker.state == "closed"
    assert _backend_errors(registry, "commtel_circuit_backend_errors_total", breaker="probes-threads") == 0


def test_no_free_connection_within_the_timeout_answers_by_the_fallback_and_cools_nothing(
    redis_url: str, registry: CollectorRegistry
) -> None:
    """With the only connection lent out, a decision waits its timeout, answers by the fail policy (counted),
    and starts no cool-down: the next decision, once a connection is free, is a real one."""
    backend = RedisBackend(redis_url + "?max_connections=1", timeout_s=0.1, fail_open=False)
    limiter = RateLimiter(SlidingWindow(5, 60.0), name="starved", backend=backend)
    assert limiter.try_acquire("k")
    link = backend.caller.link
    slots = link._nodes[None]  # noqa: SLF001 - lend the only connection out, as a slow caller would
    held = slots.take(float("inf"))
    try:
        waited = threading.Thread(target=lambda: admitted.append(limiter.try_acquire("k").allowed))
        admitted: list[bool] = []
        waited.start()
        waited.join()
    finally:
        slots.give(held)
    assert admitted == [False]  # fail closed: no connection came free in 0.1 s
    assert _backend_errors(registry, "commtel_ratelimit_backend_errors_total", limiter="starved") == 1
    assert link.health.down_at is None
    assert limiter.try_acquire("k").remaining == 3  # a real decision again
