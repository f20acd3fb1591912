"""Retries over real HTTP against the simulated platform, and a budget shared on real Redis."""

from __future__ import annotations

import asyncio
import time

import httpx
import requests

from prometheus_client import CollectorRegistry

from commtel import RetryBudget, RetryPolicy, retry
from commtel.simulator import SimulatedPlatform


def test_503_burst_is_retried_and_succeeds(platform: SimulatedPlatform, registry: CollectorRegistry) -> None:
    """A burst of 503s from the server is retried (requests, raise_for_status) until it answers 200."""
    platform.fail_next(2, 503)

    @retry(operation="fetch", platform="testplatform", max_attempts=4, base_delay=0.01)
    def fetch() -> dict[str, object]:
        response = requests.get(f"{platform.url}/api/items", timeout=5)
        response.raise_for_status()
        return response.json()

    assert fetch()["ok"] is True
    assert platform.stats.by_status[503] == 2
    labels = {"operation": "fetch", "platform": "testplatform", "reason": "503"}
    assert registry.get_sample_value("commtel_retry_attempts_total", labels) == 2


def test_503_burst_async_response_results(platform: SimulatedPlatform) -> None:
    """The async path retries 503 *responses* (httpx does not raise) the same way."""
    platform.fail_next(3, 503)
    policy = RetryPolicy(operation="afetch", max_attempts=5, base_delay=0.01)

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(base_url=platform.url) as client:
            return await policy.acall(client.get, "/api/items")

    assert asyncio.run(main()).status_code == 200
    assert platform.stats.by_status[503] == 3


def test_429_waits_the_servers_retry_after() -> None:
    """Over quota, the 429's Retry-After is waited before the retry, which then succeeds."""
    with SimulatedPlatform("quota", limit=2, window_s=1.0) as server, httpx.Client(base_url=server.url) as client:
        policy = RetryPolicy(operation="q", max_attempts=3, base_delay=0.01)
        assert client.get("/api/a").status_code == 200
        assert client.get("/api/a").status_code == 200
        started = time.monotonic()
        response = policy.call(client.get, "/api/a")
        waited = time.monotonic() - started
        assert response.status_code == 200
        assert server.stats.throttled == 1
        assert waited >= 0.9, waited  # the server said Retry-After: 1 (base_delay alone is 0.01)


def test_redis_budget_is_shared(redis_url: str) -> None:
    """Two budgets with one name on Redis draw from one pool of retries."""
    first = RetryBudget("shared", ratio=0.0, min_retries=3, redis=redis_url)
    second = RetryBudget("shared", ratio=0.0, min_retries=3, redis=redis_url)
    grants = [first.try_acquire(0), second.try_acquire(0), first.try_acquire(0), second.try_acquire(0)]
    assert grants == [True, True, True, False]
    assert second.denied == 1


def test_redis_budget_counts_calls(redis_url: str) -> None:
    """Calls deposited by one process earn retries for another at the ratio."""
    depositor = RetryBudget("earned", ratio=0.5, min_retries=0, period=10, redis=redis_url)
    spender = RetryBudget("earned", ratio=0.5, min_retries=0, period=10, redis=redis_url)
    for _ in range(4):
        depositor.record_call(0)
    assert depositor.try_acquire(0) is True  # flushes the 4 pending calls: 2 retries allowed
    assert spender.try_acquire(0) is True
    assert spender.try_acquire(0) is False


def test_redis_down_fails_open() -> None:
    """When Redis is unreachable the budget answers fail_open instead of raising."""
    budget = RetryBudget("down", redis="redis://127.0.0.1:1/0")
    assert budget.try_acquire(0) is True
    assert RetryBudget("down", redis="redis://127.0.0.1:1/0", fail_open=False).try_acquire(0) is False
