"""The Redis store's transport: held connections across threads, forks and dropped sockets; per-plan scripts."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest
import redis as redis_lib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from commtel import RateLimiter
from commtel.errors import ConfigurationError
from commtel.ratelimit import RedisBackend, SlidingWindow, TokenBucket
from commtel.ratelimit._core import compile_quota
from tests.ratelimit.helpers import assert_lua_decides_like_core, steps


scope_sets = st.sampled_from(
    [
        [("p", [TokenBucket(2.0, 3)]), ("e", [SlidingWindow(2, 1.0)])],
        [("p", [SlidingWindow(3, 1.0), SlidingWindow(5, 4.0)]), ("e", [TokenBucket(4.0, 2)])],
        [("a", [TokenBucket(4.0, 3), SlidingWindow(3, 1.0)]), ("b", [TokenBucket(1.0, 2), SlidingWindow(2, 2.0)])],
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scope_sets, steps)
def test_lua_matches_the_python_core_across_scopes(redis_url: str, scopes: list, arrivals: list) -> None:  # type: ignore[type-arg]
    """With several scopes (buckets and windows mixed) the script decides exactly like the memory store."""
    assert_lua_decides_like_core(redis_url, scopes, arrivals)


limit_sets = st.sampled_from(
    [
        [TokenBucket(2.0, 3)],
        [SlidingWindow(3, 1.0)],
        [SlidingWindow(2, 0.5), SlidingWindow(5, 4.0)],
        [TokenBucket(4.0, 2), SlidingWindow(3, 1.0)],
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit_sets, st.lists(st.tuples(st.integers(-48, 96), st.integers(1, 2), st.booleans()), max_size=40))
def test_lua_matches_the_python_core_when_clocks_step_back(redis_url: str, limits: list, steps: list) -> None:  # type: ignore[type-arg]
    """Readings older than the newest admission (another host's clock) get the core's answer: units take the newest time."""
    backend = RedisBackend(redis_url, server_time=False, prefix=f"bk{time.monotonic_ns()}")
    quota = compile_quota(limits)
    shared = backend.bind("bk")
    plan = shared.plan([("", quota)])
    state, now = None, 1000.0
    for ticks, cost, peek in steps:
        now += ticks / 64
        state, expected = quota.decide(state, now, cost, not peek)
        assert shared.decide(plan, "k", now, cost, not peek) == expected
    backend.close()


def test_units_admitted_at_one_instant_are_each_counted(redis_url: str) -> None:
    """Admissions sharing one timestamp (same clock reading, or a clock behind the newest) never overwrite each other."""
    backend = RedisBackend(redis_url, server_time=False)
    quota = compile_quota([SlidingWindow(6, 10.0)])
    shared = backend.bind("instant")
    plan = shared.plan([("", quota)])
    state = None
    for now, cost in [(5.0, 1), (5.0, 2), (4.0, 1), (5.0, 1), (5.0, 1), (5.0, 1), (4.5, 1)]:
        state, expected = quota.decide(state, now, cost)
        assert shared.decide(plan, "k", now, cost) == expected
    assert not expected and expected.remaining == 0
    backend.close()


def test_eight_threads_on_one_backend_admit_exactly_the_window(redis_url: str) -> None:
    """Threads sharing one backend each get their own connection and never over-admit a window."""
    backend = RedisBackend(redis_url)
    limiter = RateLimiter(SlidingWindow(200, 60.0), name="threads", backend=backend)
    admitted: list[int] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        admitted.append(sum(limiter.try_acquire("hot").allowed for _ in range(50)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 200
    assert 1 <= backend.caller.link._nodes[None].created <= 8  # noqa: SLF001 - one connection per concurrent caller at most
    backend.close()


def test_a_connection_dropped_by_the_server_is_replaced_without_a_failed_decision(
    redis_url: str,
    registry: CollectorRegistry,
) -> None:
    """When Redis closes an idle held connection, the next decision reconnects and is a real one."""
    limiter = RateLimiter(SlidingWindow(1, 60.0), name="dropped", backend=RedisBackend(redis_url, fail_open=True))
    assert limiter.try_acquire("k")
    redis_lib.Redis.from_url(redis_url).client_kill_filter(_type="normal", skipme=True)
    assert not limiter.try_acquire("k")  # a fail-open fallback would have admitted it
    assert (
        registry.get_sample_value("commtel_ratelimit_backend_errors_total", {"limiter": "dropped", "backend": "redis"})
        == 0
    )


def test_a_forked_child_uses_its_own_connections(redis_url: str) -> None:
    """After a fork, parent and child decide at the same time over separate sockets and share one budget exactly."""
    backend = RedisBackend(redis_url, fail_open=False, timeout_s=2.0)
    limiter = RateLimiter(SlidingWindow(400, 60.0), name="fork", backend=backend)
    assert limiter.try_acquire("k")  # the parent holds a connection before forking
    held = backend.caller.link._nodes[None]._idle  # noqa: SLF001 - white-box: which sockets
    parents = {conn._sock.getsockname() for conn in held}
    read, write = os.pipe()
    start = time.time() + 0.3
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        count = 0
        try:
            while time.time() < start:
                pass
            count = sum(limiter.try_acquire("k").allowed for _ in range(300))
            mine = backend.caller.link._nodes[None]._idle  # noqa: SLF001
            if parents & {conn._sock.getsockname() for conn in mine if conn._sock is not None}:
                count = 999
        finally:
            os.write(write, count.to_bytes(2, "big"))
            os._exit(0)
    os.close(write)
    while time.time() < start:
        pass
    mine = sum(limiter.try_acquire("k").allowed for _ in range(300))
    theirs = int.from_bytes(os.read(read, 2), "big")
    os.waitpid(pid, 0)
    os.close(read)
    assert 1 + mine + theirs == 400
    assert not limiter.try_acquire("k")


def test_a_client_object_is_read_for_its_server_and_credentials(redis_url: str) -> None:
    """A redis-py client (sync or asyncio) names the deployment; commtel decides over its own connections."""
    import redis.asyncio

    client = redis_lib.Redis.from_url(redis_url)
    limiter = RateLimiter(TokenBucket(1.0, 2), name="client-object", backend=RedisBackend(client))
    assert limiter.try_acquire("k").remaining == 1
    redis_lib.Redis.from_url(redis_url).script_flush()
    assert limiter.try_acquire("k").remaining == 0
    assert not limiter.try_acquire("k")
    assert client.connection_pool._created_connections == 0  # noqa: SLF001 - the caller's pool stays untouched
    aio = RateLimiter(
        TokenBucket(1.0, 2), name="client-object", backend=RedisBackend(redis.asyncio.Redis.from_url(redis_url))
    )
    assert not aio.try_acquire("k")


def test_anything_else_is_a_configuration_error() -> None:
    """A URL scheme or an object commtel cannot read fails at construction, naming what it accepts."""
    with pytest.raises(ConfigurationError, match=r"redis\+sentinel://"):
        RedisBackend("http://localhost:6379")
    with pytest.raises(ConfigurationError, match="redis-py client"):
        RedisBackend(object())
    with pytest.raises(ConfigurationError, match="service"):
        RedisBackend("redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ConfigurationError, match="timeout_s"):
        RedisBackend("redis://127.0.0.1:1", timeout_s=0)


def test_all_state_of_a_limiter_key_is_one_sorted_set_with_a_ttl(redis_url: str) -> None:
    """One key per limiter key: a bucket's arrival time and a block are one member each, a window one
    member per unit (time, n); the key lives one horizon (or block), never less than any scope needs."""
    backend = RedisBackend(redis_url)
    bucket = RateLimiter(TokenBucket(10.0, 5), name="plans", backend=backend)
    window = RateLimiter(SlidingWindow(5, 30.0), name="plans-w", backend=backend)
    assert bucket.try_acquire("k") and window.try_acquire("k", cost=2)
    client = redis_lib.Redis.from_url(redis_url)
    assert {k.decode(): client.type(k).decode() for k in client.keys("commtel:rl:*")} == {
        "commtel:rl:{plans:k}": "zset",
        "commtel:rl:{plans-w:k}": "zset",
    }
    assert 0 < client.pttl("commtel:rl:{plans:k}") <= 1500
    assert 30_000 < client.pttl("commtel:rl:{plans-w:k}") <= 31_000
    (tat,) = client.zrange("commtel:rl:{plans:k}", 0, -1)
    assert tat[:2] == b"T\x00" and len(tat) == 10  # "T", the scope "" (length 0), the time
    units = client.zrange("commtel:rl:{plans-w:k}", 0, -1)
    stamp = units[0][2:10]
    assert units == [b"U\x00" + stamp + struct.pack(">I", 1), b"U\x00" + stamp + struct.pack(">I", 2)]
    window.feedback("k", 429, {"Retry-After": "90"})
    assert 89_000 < client.pttl("commtel:rl:{plans-w:k}") <= 91_000  # the block outlives the window
    window.reset("k")
    assert not client.exists("commtel:rl:{plans-w:k}")
    backend.close()
