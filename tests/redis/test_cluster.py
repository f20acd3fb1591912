"""Redis Cluster: a URL to any node serves every component; slots moving under load cost no stall and no error."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from prometheus_client import CollectorRegistry

from commtel import CircuitBreaker, RateLimiter, RetryBudget
from commtel.backends import _redis_link
from commtel.backends._redis_route import slot_of
from commtel.ratelimit import RedisBackend, SlidingWindow
from tests.harness.procs import RedisClusterServers


def _keys_on_every_node(cluster: RedisClusterServers, prefix: str) -> list[str]:
    """One limiter key per cluster node (so a one-node URL must reach the others)."""
    found: dict[int, str] = {}
    for i in range(1000):
        key = f"k{i}"
        port = cluster.owner(slot_of(f"commtel:rl:{{{prefix}:{key}}}".encode())).port
        found.setdefault(port, key)
        if len(found) == len(cluster.nodes):
            break
    return list(found.values())


@pytest.mark.parametrize("scheme", ["redis+cluster", "redis"])
def test_a_url_to_any_one_node_serves_every_component(
    redis_cluster: RedisClusterServers, redis_cluster_url: str, registry: CollectorRegistry, scheme: str
) -> None:
    """``redis+cluster://`` (or even ``redis://``) naming one node: keys on every node decide exactly,
    for the limiter, the breaker and the budget, sync and async, with no backend error."""
    node = redis_cluster.nodes[2]
    url = f"{scheme}://{node.address}"
    name = f"any-node-{scheme}"
    limiter = RateLimiter(SlidingWindow(3, 60.0), name=name, backend=RedisBackend(url, fail_open=True))
    keys = _keys_on_every_node(redis_cluster, name)
    assert len(keys) == 3
    for key in keys:
        assert [limiter.try_acquire(key).allowed for _ in range(4)] == [True, True, True, False]
    breakers = [CircuitBreaker(f"{name}-{i}", failure_threshold=1, redis=url) for i in range(6)]
    for breaker in breakers:
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    assert {CircuitBreaker(b.name, redis=redis_cluster_url).state for b in breakers} == {"open"}
    budget = RetryBudget(name, ratio=0.0, min_retries=2, redis=url, fail_open=True)
    assert [budget.try_acquire(0) for _ in range(3)] == [True, True, False]

    async def main() -> list[bool]:
        return [(await limiter.atry_acquire(key)).allowed for key in keys]

    assert asyncio.run(main()) == [False, False, False]
    errors = registry.get_sample_value("commtel_ratelimit_backend_errors_total", {"limiter": name, "backend": "redis"})
    assert not errors  # absent or 0


def test_no_decision_stalls_or_fails_while_its_slot_moves(
    redis_cluster: RedisClusterServers,
    redis_cluster_url: str,
    registry: CollectorRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slots of a hot limiter key and of a shared breaker move back and forth (another process resharding
    as redis-cli does) while threads decide on them: calls follow the ASK/MOVED redirections and never wait
    for the slot (each decision names one key: no TRYAGAIN), none fails, and the window stays exact."""
    limit = 300
    limiter = RateLimiter(SlidingWindow(limit, 300.0), name="moving", backend=RedisBackend(redis_cluster_url))
    breaker = CircuitBreaker("moving", failure_threshold=1000, redis=redis_cluster_url)
    slots = sorted({slot_of(b"commtel:rl:{moving:hot}"), slot_of(b"commtel:breaker:{moving}")})
    assert limiter.try_acquire("hot") and breaker.call(lambda: 1)
    waited = threading.local()
    sleep = time.sleep

    def counted_sleep(seconds: float) -> None:  # the waits the link adds before trying again
        waited.s = getattr(waited, "s", 0.0) + seconds
        sleep(seconds)

    monkeypatch.setattr(_redis_link.time, "sleep", counted_sleep)
    redis_cluster.reset_stats()
    stop = threading.Event()
    stalls: list[float] = []
    durations: list[float] = []
    admitted = [1]

    def hammer() -> None:
        while not stop.is_set():
            waited.s = 0.0
            started = time.monotonic()
            admitted.append(limiter.try_acquire("hot").allowed)
            breaker.call(lambda: None)
            durations.append(time.monotonic() - started)
            stalls.append(waited.s)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        redis_cluster.migrate_elsewhere(slots, rounds=3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(durations) > 100
    assert redis_cluster.command_calls("asking") > 0  # the calls did meet the moving slots
    assert max(stalls) == 0.0
    assert max(durations) < 0.25  # none came near the timeout, however busy this machine is
    assert sum(admitted) == min(limit, len(admitted))
    for metric, labels in [
        ("commtel_ratelimit_backend_errors_total", {"limiter": "moving"}),
        ("commtel_circuit_backend_errors_total", {"breaker": "moving"}),
    ]:
        assert not registry.get_sample_value(metric, {**labels, "backend": "redis"})  # absent or 0
