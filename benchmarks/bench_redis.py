"""Redis at fleet scale: the shared breaker, a Cluster, 300 concurrent tasks, and a frozen Redis.

Each group starts its own servers (a ``redis-server``; a 3-node Cluster made with
``redis-cli --cluster create``) with the test harness, and is skipped when the binaries
are missing. Round-trip groups run interleaved (see :class:`~benchmarks._harness.Interleaved`).

- Shared breaker, closed path: one successful call through ``CircuitBreaker(redis=…)``
  against redis-py's ``PING`` (target <= 1.1x: one round trip), and pybreaker with its
  Redis state storage.
- The limiter on a 3-node Cluster (``redis+cluster://``) against limits on the same Cluster.
- 300 asyncio tasks deciding at once on one key (wall ns per decision): against 300 tasks
  sending redis-py asyncio ``PING`` through a 100-connection blocking pool.
- A frozen Redis (SIGSTOP): what 100 guarded calls (``Guard`` with a Redis limiter and a shared
  breaker, timeout 0.1 s) take beyond the same calls on a healthy Redis, per cool-down begun,
  against one timeout (target <= 1x): all within one cool-down, and spread over several.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from benchmarks._harness import Case, Interleaved
from commtel import CircuitBreaker, RateLimiter
from commtel.instrumentation import Guard
from commtel.ratelimit import RedisBackend, SlidingWindow, TokenBucket
from commtel.telemetry._metrics import use_registry


_BREAKER = "breaker shared on redis, closed path"
_CLUSTER = "ratelimit on a 3-node redis cluster, allowed path"
_TASKS = "ratelimit on redis, 300 tasks at once (wall ns/decision)"
_FROZEN = "frozen redis, 100 guarded calls (limiter + breaker)"
_TIMEOUT_S = 0.1
_TASK_COUNT = 300


def _servers() -> tuple[Any, Any] | None:
    """A redis-server and a 3-node Cluster from the test harness (stopped at exit); None without the binaries."""
    import atexit

    from tests.harness.procs import RedisClusterServers, RedisServer

    try:
        single = RedisServer().start()
        cluster = RedisClusterServers().start()
    except BaseException:  # noqa: BLE001 - the harness skips (pytest's Skipped) when a binary is missing
        return None
    atexit.register(single.stop)
    atexit.register(cluster.stop)
    return single, cluster


def _breaker_cases(url: str) -> list[Case]:
    import pybreaker
    import redis

    client = redis.Redis.from_url(url)
    ours = CircuitBreaker("bench-shared", redis=url)(lambda: 1)
    theirs = pybreaker.CircuitBreaker(
        state_storage=pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, redis.Redis.from_url(url))
    )(lambda: 1)
    fns: dict[str, Callable[[], object]] = {
        "redis-py PING": client.ping,
        "commtel CircuitBreaker(redis=), events off": ours,
        "pybreaker with CircuitRedisStorage": theirs,
    }
    session = Interleaved(fns)
    targets = {"commtel CircuitBreaker(redis=), events off": 1.1}
    return [
        Case(_BREAKER, name, measure=session.measure(name), baseline=name == "redis-py PING", target=targets.get(name))
        for name in fns
    ]


def _cluster_cases(url: str) -> list[Case]:
    from limits import parse
    from limits.storage import RedisClusterStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    huge = parse("1000000000/hour")
    storage = RedisClusterStorage(url)
    fixed = FixedWindowRateLimiter(storage)
    moving = MovingWindowRateLimiter(storage)
    bucket = RateLimiter(TokenBucket(1e6, 10**9), name="bench-cluster-bucket", backend=url)
    window = RateLimiter(SlidingWindow(10**9, 60.0), name="bench-cluster-window", backend=url)
    fns: dict[str, Callable[[], object]] = {
        "limits fixed window on the cluster": lambda: fixed.hit(huge, "hot"),
        "limits moving window on the cluster": lambda: moving.hit(huge, "hot-moving"),
        "commtel token bucket on the cluster, events off": lambda: bucket.try_acquire("hot"),
        "commtel sliding window on the cluster, events off": lambda: window.try_acquire("hot"),
    }
    session = Interleaved(fns)
    return [
        Case(_CLUSTER, name, measure=session.measure(name), baseline=name.startswith("limits fixed")) for name in fns
    ]


class _AllAtOnce:
    """300 tasks making 20 calls each, started together: wall ns per call, cases alternated over rounds.

    Each round runs every case once (in a fresh event loop, after a warm-up run): a busy
    machine then slows all cases alike, and each case reports its median round.
    """

    def __init__(self, makers: dict[str, Callable[[], Callable[[], Awaitable[object]]]], rounds: int = 5) -> None:
        self._makers = makers
        self._rounds = rounds
        self._results: dict[str, float] = {}

    @staticmethod
    async def _run(make: Callable[[], Callable[[], Awaitable[object]]], per_task: int = 20) -> float:
        call = make()  # asyncio clients bind to the loop that first uses them
        start = asyncio.Event()

        async def task() -> None:
            await start.wait()
            for _ in range(per_task):
                await call()

        async def once() -> float:
            tasks = [asyncio.create_task(task()) for _ in range(_TASK_COUNT)]
            await asyncio.sleep(0)
            started = time.perf_counter_ns()
            start.set()
            await asyncio.gather(*tasks)
            start.clear()
            return (time.perf_counter_ns() - started) / (_TASK_COUNT * per_task)

        await once()  # warm: connections, scripts
        return await once()

    def measure(self, name: str) -> Callable[[], float]:
        def measure() -> float:
            if not self._results:
                import commtel.events

                samples: dict[str, list[float]] = {case: [] for case in self._makers}
                commtel.events.set_listeners([])
                try:
                    for _ in range(self._rounds):
                        for case, make in self._makers.items():
                            samples[case].append(asyncio.run(self._run(make)))
                finally:
                    commtel.events.set_listeners(None)
                self._results = {case: statistics.median(values) for case, values in samples.items()}
            return self._results[name]

        return measure


def _tasks_cases(url: str) -> list[Case]:
    import redis.asyncio

    def ping() -> Callable[[], Awaitable[object]]:
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=100)
        return redis.asyncio.Redis(connection_pool=pool).ping

    # A generous timeout: this measures throughput, and every decision must be a real one.
    backend = RedisBackend(url, timeout_s=5.0)
    window = RateLimiter(SlidingWindow(10**9, 60.0), name="bench-tasks-window", backend=backend)
    bucket = RateLimiter(TokenBucket(1e6, 10**9), name="bench-tasks-bucket", backend=backend)
    makers: dict[str, Callable[[], Callable[[], Awaitable[object]]]] = {
        "redis-py asyncio PING (pool of 100)": ping,
        "commtel sliding window atry_acquire": lambda: lambda: window.atry_acquire("hot"),
        "commtel token bucket atry_acquire": lambda: lambda: bucket.atry_acquire("hot"),
    }
    session = _AllAtOnce(makers)
    return [
        Case(
            _TASKS,
            name,
            measure=session.measure(name),
            baseline=name.startswith("redis-py"),
            target=None if name.startswith("redis-py") else 1.2,
        )
        for name in makers
    ]


class _Frozen:
    """100 guarded calls on a healthy, then a frozen Redis (its own server, so SIGSTOP touches no other group).

    Best of three rounds, each on a fresh link (another database number: another URL), so
    each begins healthy; reports what the guard adds to the frozen calls beyond what it adds
    to the healthy ones, per cool-down begun.
    """

    def __init__(self, *, cooldown_s: float, call_s: float) -> None:
        self.cooldown_s = cooldown_s
        self.call_s = call_s
        self._result: float | None = None

    def _guard(self, url: str, name: str) -> Guard:
        backend = RedisBackend(url, timeout_s=_TIMEOUT_S, cooldown_s=self.cooldown_s)
        limiter = RateLimiter(SlidingWindow(10**6, 60.0), name=name, backend=backend)
        breaker = CircuitBreaker(name, redis=url, redis_timeout=_TIMEOUT_S, redis_cooldown=self.cooldown_s)
        return Guard(name, limiter=limiter, breaker=breaker, span=False)

    def _hundred(self, guard: Guard) -> float:
        """What the guard adds to 100 calls: their wall time less the calls' own (a busy machine stretches sleeps)."""
        inner = 0

        def call() -> None:
            nonlocal inner
            started = time.perf_counter_ns()
            time.sleep(self.call_s)
            inner += time.perf_counter_ns() - started

        started = time.perf_counter_ns()
        for _ in range(100):
            guard.call(call)
        return time.perf_counter_ns() - started - inner

    def _round(self, server: Any, db: int) -> float:
        guard = self._guard(server.url.replace("/0", f"/{db}"), f"bench-frozen-{self.cooldown_s}-{db}")
        self._hundred(guard)  # warm
        healthy = self._hundred(guard)
        server.signal(signal.SIGSTOP)
        try:
            frozen = self._hundred(guard)
        finally:
            server.signal(signal.SIGCONT)
        cooldowns = 1 + int((frozen + 100 * self.call_s * 1e9) / 1e9 / self.cooldown_s)
        return (frozen - healthy) / cooldowns

    def added_per_cooldown_ns(self) -> float:
        if self._result is None:
            import commtel.events

            from tests.harness.procs import RedisServer

            server = RedisServer().start()
            commtel.events.set_listeners([])
            try:
                self._result = min(self._round(server, db) for db in (1, 2, 3))
            finally:
                commtel.events.set_listeners(None)
                server.stop()
        return self._result


def _frozen_cases() -> list[Case]:
    within = _Frozen(cooldown_s=30.0, call_s=0.0005)
    spread = _Frozen(cooldown_s=0.25, call_s=0.01)
    return [
        Case(_FROZEN, f"one timeout ({_TIMEOUT_S:g} s)", measure=lambda: _TIMEOUT_S * 1e9, baseline=True),
        Case(_FROZEN, "added, all within one cool-down", measure=within.added_per_cooldown_ns, target=1.0),
        Case(_FROZEN, "added per 0.25 s cool-down begun", measure=spread.added_per_cooldown_ns, target=1.0),
    ]


def cases() -> list[Case]:
    use_registry(CollectorRegistry())
    servers = _servers()
    if servers is None:
        return []
    single, cluster = servers
    return _breaker_cases(single.url) + _cluster_cases(cluster.url) + _tasks_cases(single.url) + _frozen_cases()
