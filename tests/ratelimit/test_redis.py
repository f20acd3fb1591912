"""The Redis store on a real redis-server: same decisions as the Python core, shared by processes, failure policy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import redis as redis_lib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from commtel import RateLimiter, RateLimitExceeded
from commtel.ratelimit import RateLimitConfig, RedisBackend, SlidingWindow, TokenBucket
from tests.harness.procs import RedisServer
from tests.harness.waiting import eventually
from tests.ratelimit.helpers import assert_lua_decides_like_core, steps


limit_sets = st.sampled_from(
    [
        [TokenBucket(2.0, 3)],
        [SlidingWindow(3, 1.0)],
        [SlidingWindow(2, 0.5), SlidingWindow(5, 4.0)],
        [TokenBucket(4.0, 2), SlidingWindow(3, 1.0), SlidingWindow(6, 8.0)],
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit_sets, steps)
def test_lua_script_decides_exactly_like_the_python_core(redis_url: str, limits: list, arrivals: list) -> None:  # type: ignore[type-arg]
    """For any arrival sequence the Lua script returns the same decisions as the sans-I/O core."""
    assert_lua_decides_like_core(redis_url, [("", limits)], arrivals)


def test_config_scopes_share_one_key_with_a_ttl(redis_url: str) -> None:
    """Every scope of one limiter key lives in one hash-tagged key with a TTL; scopes commit together or not at all."""
    config = RateLimitConfig(requests_per_minute=100, endpoint_limits={"media": {"minute": 1}})
    limiter = RateLimiter(config, name="tagged", backend=redis_url)
    assert limiter.try_acquire("u1", endpoint="media")
    assert not limiter.try_acquire("u1", endpoint="media")
    client = redis_lib.Redis.from_url(redis_url)
    assert [k.decode() for k in client.keys("commtel:rl:*")] == ["commtel:rl:{tagged:u1}"]
    assert 86_000_000 < client.pttl("commtel:rl:{tagged:u1}") <= 86_401_000  # the longest scope's horizon
    # The refused media request consumed nothing from the platform scope: one unit of its burst
    # of 10 is used, and the peek counts the one it would take.
    peeked = limiter.peek("u1")
    assert (peeked.remaining, peeked.limit) == (8, 10)
    limiter.reset("u1")
    assert not client.keys("commtel:rl:*")


def test_script_is_reloaded_after_a_script_flush(redis_url: str) -> None:
    """EVALSHA falls back to loading the script when Redis answers NOSCRIPT."""
    limiter = RateLimiter(SlidingWindow(5, 10.0), name="flush", backend=redis_url)
    assert limiter.try_acquire("k")
    redis_lib.Redis.from_url(redis_url).script_flush()
    assert limiter.try_acquire("k").remaining == 3


def test_feedback_blocks_the_key_in_every_process(redis_url: str) -> None:
    """A server block recorded through one limiter object is honoured by another sharing Redis."""
    first = RateLimiter(TokenBucket(100.0, 100), name="fb", backend=redis_url)
    second = RateLimiter(TokenBucket(100.0, 100), name="fb", backend=redis_url)
    first.feedback("acct", 429, {"Retry-After": "20"})
    decision = second.try_acquire("acct")
    assert not decision and 19.0 < decision.retry_after_s <= 20.0
    assert second.try_acquire("other")


def test_async_acquire_on_redis(redis_url: str) -> None:
    """aacquire goes through redis-py's asyncio client with the same script."""
    limiter = RateLimiter(SlidingWindow(1, 30.0), name="async", backend=redis_url)

    async def main() -> None:
        assert await limiter.aacquire("k")
        with pytest.raises(RateLimitExceeded):
            await limiter.aacquire("k", timeout=0.1)
        await limiter.afeedback("k", 429, {"Retry-After": "1"})

    asyncio.run(main())


_WORKER = """
import sys, time
import commtel
import commtel.events
from commtel import RateLimiter
from commtel.ratelimit import SlidingWindow, TokenBucket
commtel.events.set_listeners([])
url, attempts = sys.argv[1], int(sys.argv[2])
window = RateLimiter(SlidingWindow(300, 3600.0), name="procs-window", backend=url)  # no unit expires mid-test
bucket = RateLimiter(TokenBucket(100.0, 20), name="procs-bucket", backend=url)
window.try_acquire("warm-up")  # connected, scripts loaded: the race below is only the decisions
bucket.try_acquire("warm-up")
print("ready", flush=True)
sys.stdin.readline()  # every worker starts at once, however long its start-up took
counts = [0, 0]
for _ in range(attempts):
    counts[0] += window.try_acquire("hot").allowed
    counts[1] += bucket.try_acquire("hot").allowed
print(counts[0], counts[1])
"""


def test_four_processes_on_one_redis_key_never_over_admit(redis_url: str) -> None:
    """4 processes hammering one key admit exactly the window's limit and no more than the bucket allows."""
    attempts = 150  # per process: 600 in all, twice the window's 300
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WORKER), redis_url, str(attempts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:  # a barrier: all four are connected before any decides
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr and proc.stderr.read()
    start = time.time()
    outs = [proc.communicate("go\n", timeout=60) for proc in procs]
    elapsed = time.time() - start
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
    window = sum(int(out.split()[0]) for out, _ in outs)
    bucket = sum(int(out.split()[1]) for out, _ in outs)
    assert window == 300
    assert 20 <= bucket <= 20 + 100.0 * elapsed


def _errors(registry: CollectorRegistry, limiter: str) -> float:
    return (
        registry.get_sample_value("commtel_ratelimit_backend_errors_total", {"limiter": limiter, "backend": "redis"})
        or 0.0
    )


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_redis_failure_gives_the_configured_answer_within_the_timeout(
    redis_server: RedisServer,
    redis_url: str,
    registry: CollectorRegistry,
    how: str,
) -> None:
    """With Redis stopped (refusing) or frozen (hanging), fail-open admits and fail-closed refuses, in time."""
    timeout_s = 0.2
    open_limiter = RateLimiter(
        SlidingWindow(1, 60.0), name="open", backend=RedisBackend(redis_url, timeout_s=timeout_s, fail_open=True)
    )
    closed_limiter = RateLimiter(
        SlidingWindow(1, 60.0), name="closed", backend=RedisBackend(redis_url, timeout_s=timeout_s, fail_open=False)
    )
    assert open_limiter.try_acquire("k") and closed_limiter.try_acquire("k")
    assert redis_server.proc is not None
    if how == "stopped":
        redis_server.stop()
    else:
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert open_limiter.try_acquire("k")  # would be refused by the window: fail-open admitted it
        assert time.monotonic() - started < timeout_s * 2 + 0.3
        started = time.monotonic()
        with pytest.raises(RateLimitExceeded):
            closed_limiter.acquire("k", timeout=0.5)
        assert time.monotonic() - started < 0.5 + timeout_s * 2 + 0.3
        assert _errors(registry, "open") >= 1 and _errors(registry, "closed") >= 1
    finally:
        if how == "stopped":
            redis_server.start()
        else:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
    eventually(lambda: closed_limiter.try_acquire("fresh"), timeout=5, interval=0.05)  # the pool reconnects itself
    assert not closed_limiter.try_acquire("fresh")  # back to real decisions: the window is full
