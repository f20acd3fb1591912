"""One link per deployment per process: shared by limiter, breaker and budget, built without Redis, from any client."""

from __future__ import annotations

import asyncio
import time

from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from commtel import CircuitBreaker, RateLimiter, RetryBudget
from commtel.ratelimit import RedisBackend, SlidingWindow
from tests.harness.procs import RedisClusterServers, RedisSentinelGroup


def _link(component: Any) -> Any:
    """The shared link behind a limiter backend, a breaker or a budget (white-box)."""
    if isinstance(component, RedisBackend):
        return component.caller.link
    if isinstance(component, CircuitBreaker):
        return component._shared._caller.link  # noqa: SLF001
    return component._caller.link  # noqa: SLF001


def test_components_naming_one_url_share_one_link(redis_url: str) -> None:
    """Limiter, breaker and budget on one URL use one set of connections; another URL gets its own."""
    backend = RedisBackend(redis_url)
    breaker = CircuitBreaker("shared-link", redis=redis_url)
    budget = RetryBudget("shared-link", redis=redis_url)
    assert _link(backend) is _link(breaker) is _link(budget)
    assert _link(RedisBackend(redis_url.replace("/0", "/1"))) is not _link(backend)
    client = redis.Redis.from_url(redis_url)
    assert _link(RedisBackend(client)) is _link(CircuitBreaker("shared-link", redis=client))


@pytest.mark.parametrize(
    "target",
    [
        "redis://127.0.0.1:1/0",
        "redis://no-such-host.invalid:6379/0",
        "redis+cluster://127.0.0.1:1,127.0.0.1:2",
        "redis+sentinel://127.0.0.1:1/m",
    ],
)
def test_construction_never_needs_redis(target: str) -> None:
    """Nothing connects at construction: a dead or unresolvable Redis costs nothing until a call."""
    started = time.monotonic()
    RateLimiter(SlidingWindow(1, 1.0), name="ctor", backend=target)
    breaker = CircuitBreaker("ctor", redis=target, on_backend_error="local")
    RetryBudget("ctor", redis=target)
    assert time.monotonic() - started < 0.5
    assert breaker.call(lambda: "ran") == "ran"  # and the first call decides locally, within the timeout


def _evalsha_and_commands(server: redis.Redis) -> tuple[int, int]:
    stats = server.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    other = sum(n for name, n in calls.items() if name not in {"info", "config|resetstat", "evalsha"})
    return calls.get("evalsha", 0), other


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_closed_shared_breaker_costs_one_round_trip_and_one_command(redis_url: str, driver: str) -> None:
    """Each successful call on a closed shared breaker is one EVALSHA running one HMGET on the server."""
    breaker = CircuitBreaker(f"one-rtt-{driver}", redis=redis_url)

    async def ok() -> int:
        return 1

    def run(calls: int) -> None:
        if driver == "sync":
            for _ in range(calls):
                breaker.call(lambda: 1)
        else:

            async def main() -> None:
                for _ in range(calls):
                    await breaker.acall(ok)

            asyncio.run(main())

    run(2)  # connect (the handshake's commands) and load the script
    server = redis.Redis.from_url(redis_url)
    server.config_resetstat()
    run(20)
    assert _evalsha_and_commands(server) == (20, 20)


def _clients(kind: str, request: pytest.FixtureRequest) -> Callable[[], Any]:
    """A factory of a redis-py client of *kind* to a live deployment (fixtures started on demand)."""
    if kind.startswith("cluster"):
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        cluster.flush()
        node = cluster.nodes[1]
        if kind == "cluster":
            return lambda: redis.RedisCluster(host="127.0.0.1", port=node.port)
        return lambda: redis.asyncio.RedisCluster(host="127.0.0.1", port=node.port)
    if kind.startswith("sentinel"):
        group: RedisSentinelGroup = request.getfixturevalue("sentinel_group")
        if kind == "sentinel":
            sentinel = redis.sentinel.Sentinel([("127.0.0.1", group.sentinel_port)])
        else:
            sentinel = redis.asyncio.sentinel.Sentinel([("127.0.0.1", group.sentinel_port)])
        return lambda: sentinel.master_for(group.service)
    url = request.getfixturevalue("redis_url")
    return (lambda: redis.Redis.from_url(url)) if kind == "redis" else (lambda: redis.asyncio.Redis.from_url(url))


@pytest.mark.parametrize("kind", ["redis", "asyncio", "cluster", "asyncio-cluster", "sentinel", "asyncio-sentinel"])
def test_every_client_object_works_for_every_component_sync_and_async(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Redis, RedisCluster and Sentinel.master_for clients, sync or asyncio, serve the limiter, breaker and budget."""
    make = _clients(kind, request)
    limiter = RateLimiter(SlidingWindow(3, 60.0), name=f"obj-{kind}", backend=RedisBackend(make()))
    breaker = CircuitBreaker(f"obj-{kind}", failure_threshold=2, redis=make())
    watcher = CircuitBreaker(f"obj-{kind}", failure_threshold=2, redis=make())
    budget = RetryBudget(f"obj-{kind}", ratio=0.0, min_retries=1, redis=make(), fail_open=False)

    async def fail() -> None:
        raise ConnectionError

    async def main() -> list[bool]:
        admitted = [(await limiter.atry_acquire("k")).allowed for _ in range(2)]
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await breaker.acall(fail)
        return admitted

    assert asyncio.run(main()) == [True, True]
    assert [limiter.try_acquire("k").allowed for _ in range(2)] == [True, False]
    assert watcher.state == "open"  # the async breaker tripped the shared state
    assert budget.try_acquire(0) is True
    assert budget.try_acquire(0) is False
