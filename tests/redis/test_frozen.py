"""A frozen Redis (SIGSTOP): one timeout per cool-down, not one per call; counted; recovered after SIGCONT."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from prometheus_client import CollectorRegistry

from commtel import CircuitBreaker, RateLimiter
from commtel.backends._redis_link import shared_link
from commtel.backends._redis_route import Health
from commtel.instrumentation import Guard
from commtel.ratelimit import RedisBackend, SlidingWindow
from tests.harness.procs import RedisServer


TIMEOUT_S = 0.2
COOLDOWN_S = 0.5
CALLS = 100
BARE_CALL_S = 0.01


def _guard(url: str, name: str) -> Guard:
    backend = RedisBackend(url, timeout_s=TIMEOUT_S, cooldown_s=COOLDOWN_S)
    limiter = RateLimiter(SlidingWindow(10_000, 60.0), name=name, backend=backend)
    breaker = CircuitBreaker(name, redis=url, redis_timeout=TIMEOUT_S, redis_cooldown=COOLDOWN_S)
    return Guard(name, limiter=limiter, breaker=breaker)


def _count(registry: CollectorRegistry, metric: str, **labels: str) -> float:
    return registry.get_sample_value(metric, {**labels, "backend": "redis"}) or 0.0


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_frozen_redis_costs_one_timeout_per_cooldown(
    redis_server: RedisServer,
    redis_url: str,
    registry: CollectorRegistry,
    monkeypatch: pytest.MonkeyPatch,
    driver: str,
) -> None:
    """100 guarded calls (limiter + shared breaker) on a frozen Redis wait out at most one timeout per
    cool-down begun, every decision is counted, and Redis is used again after SIGCONT."""
    name = f"frozen-{driver}"
    guard = _guard(redis_url, name)
    # Another component on the same URL waits longer: the shared connections' own timeouts are its
    # 5 s, yet this guard's calls (and the connects they make) keep to their 0.2 s.
    patient = RedisBackend(redis_url, timeout_s=5.0)
    timeouts: list[float] = []
    timed_out = Health.timed_out

    def counted(health: Health, now: float) -> None:  # every timeout a call waited out on the frozen server
        timeouts.append(now)
        timed_out(health, now)

    monkeypatch.setattr(Health, "timed_out", counted)

    async def bare() -> None:
        await asyncio.sleep(BARE_CALL_S)  # the behaviour under test: the guarded call's own time

    async def acalls(count: int) -> list[float]:
        durations = []
        for _ in range(count):
            started = time.monotonic()
            await guard.acall(bare)
            durations.append(time.monotonic() - started)
        return durations

    def calls(count: int) -> list[float]:
        if driver == "async":
            return asyncio.run(acalls(count))
        durations = []
        for _ in range(count):
            started = time.monotonic()
            guard.call(time.sleep, BARE_CALL_S)
            durations.append(time.monotonic() - started)
        return durations

    calls(1)  # connections open, scripts loaded
    redis_server.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        durations = calls(CALLS)
        elapsed = time.monotonic() - started
    finally:
        redis_server.signal(signal.SIGCONT)
    cooldowns_begun = 1 + int(elapsed / COOLDOWN_S)
    assert 1 <= len(timeouts) <= cooldowns_begun
    # In time too (with room for a busy machine): the calls took about their own time plus those timeouts.
    assert sum(durations) - CALLS * BARE_CALL_S <= len(timeouts) * TIMEOUT_S * 1.5 + CALLS * 0.01
    assert _count(registry, "commtel_ratelimit_backend_errors_total", limiter=name) == CALLS
    assert _count(registry, "commtel_circuit_backend_errors_total", breaker=name) >= CALLS
    time.sleep(COOLDOWN_S)  # the behaviour under test: the cool-down passes in real time
    calls(1)  # the probe finds Redis answering again
    errors = _count(registry, "commtel_ratelimit_backend_errors_total", limiter=name)
    calls(1)
    assert _count(registry, "commtel_ratelimit_backend_errors_total", limiter=name) == errors
    assert patient.caller.link is shared_link(redis_url, timeout_s=TIMEOUT_S)  # the guard's link too


def test_a_stopped_redis_is_not_cooled_down(redis_server: RedisServer, redis_url: str) -> None:
    """A refused connection fails at once, so it starts no cool-down: Redis is used as soon as it is back."""
    backend = RedisBackend(redis_url, timeout_s=TIMEOUT_S, cooldown_s=60.0, fail_open=False)
    limiter = RateLimiter(SlidingWindow(1, 60.0), name="stopped", backend=backend)
    assert limiter.try_acquire("k")
    redis_server.stop()
    try:
        started = time.monotonic()
        assert not limiter.try_acquire("other")  # fail closed
        assert time.monotonic() - started < TIMEOUT_S
    finally:
        redis_server.start()
    assert limiter.try_acquire("other")  # a real decision at once: no cool-down to wait out
    assert backend.caller.link.health.down_at is None
