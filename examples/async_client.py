"""Async client: httpx.AsyncClient with retry, a shared rate limiter and per-task correlation ids.

Forty users are handled concurrently with ``asyncio.gather`` against a feed API (a
local ``SimulatedPlatform``) whose first six answers are ``503``. Each user is one
task: fetch the profile, then post a notification. What the example shows:

* ``@commtel.retry`` on a coroutine function: the 503s are retried with backoff.
* ``await limiter.aacquire()`` waits without blocking the event loop, so all tasks
  together stay within 200 requests/s (burst 10); a ``Guard`` (retry + the same
  limiter) wraps the second call with ``await guard.acall(...)``.
* ``commtel.correlation_context`` inside each task: contextvars keep every task's id
  apart, and an httpx request hook (``commtel.inject_headers``) sends it as
  ``X-Correlation-ID``. The server's log (``platform.requests``) proves every request,
  retries included, carried its own task's id.

Run it::

    .venv/bin/python examples/async_client.py
"""

from __future__ import annotations

import asyncio
import time

from collections import Counter
from typing import Any

import httpx

import commtel
import commtel.retries

from commtel import Guard, RateLimiter, RetryConfig
from commtel.ratelimit import TokenBucket
from commtel.simulator import SimulatedPlatform


USERS = 40
RATE = 200.0


async def add_correlation_headers(request: httpx.Request) -> None:
    """httpx request hook: the current task's correlation id (and W3C context) on every request."""
    commtel.inject_headers(request.headers)


@commtel.retry(max_attempts=4, base_delay=0.02, operation="fetch_profile", platform="feed")
async def fetch_profile(client: httpx.AsyncClient, limiter: RateLimiter, user_id: int) -> dict[str, Any]:
    """GET one profile; every attempt waits for the shared limiter first."""
    await limiter.aacquire()
    response = await client.get(f"/api/users/{user_id}")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def post_notification(client: httpx.AsyncClient, user_id: int) -> dict[str, Any]:
    """POST a notification (guarded by the caller)."""
    response = await client.post(f"/api/users/{user_id}/notifications", json={"text": "hello"})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def handle_user(client: httpx.AsyncClient, limiter: RateLimiter, guard: Guard, user_id: int) -> tuple[str, str]:
    """One task: its own correlation id for both calls; returns the ids the server echoed."""
    with commtel.correlation_context(f"user-{user_id}"):
        profile = await fetch_profile(client, limiter, user_id)
        receipt = await guard.acall(post_notification, client, user_id)
    return profile["correlation_id"], receipt["correlation_id"]


async def run(platform: SimulatedPlatform) -> list[tuple[str, str]]:
    """Handle every user concurrently; returns the correlation ids the server echoed per user."""
    limiter = RateLimiter(TokenBucket(rate=RATE, burst=10), name="feed", platform="feed")
    guard = Guard(
        "post_notification", platform="feed", limiter=limiter, retry=RetryConfig(max_attempts=3, base_delay=0.02)
    )
    async with httpx.AsyncClient(
        base_url=platform.url, timeout=5, event_hooks={"request": [add_correlation_headers]}
    ) as client:
        return await asyncio.gather(*(handle_user(client, limiter, guard, n) for n in range(USERS)))


def main() -> int:
    commtel.configure_logging("WARNING", json=False)
    with SimulatedPlatform("feed", limit=1000) as platform:
        platform.fail_next(6, 503)
        started = time.monotonic()
        echoed = asyncio.run(run(platform))
        elapsed = time.monotonic() - started
        seen = [(r.path, r.headers.get("X-Correlation-ID"), r.status) for r in platform.requests]
    per_id = Counter(cid for _, cid, _ in seen)
    failed = sum(1 for *_, status in seen if status == 503)
    retries = commtel.retries.get_retry_stats_detailed()["operations"]["fetch_profile"]["retries"]
    mismatched = [(path, cid) for path, cid, _ in seen if cid != f"user-{path.split('/')[3]}"]

    print(
        f"{USERS} users handled concurrently: {len(seen)} requests in {elapsed:.2f}s (limiter: {RATE:.0f}/s, burst 10)"
    )
    print(f"503s retried: {failed} (fetch_profile retries: {retries})")
    print(
        f"correlation ids at the server: {len(per_id)} distinct, e.g. "
        f"{', '.join(f'{cid} x{n}' for cid, n in sorted(per_id.items())[:3])}"
    )

    if any(profile != f"user-{n}" or receipt != f"user-{n}" for n, (profile, receipt) in enumerate(echoed)):
        msg = f"a task's correlation id leaked into another's request: {echoed}"
        raise SystemExit(msg)
    if mismatched or len(per_id) != USERS:
        msg = f"requests carried the wrong correlation id: {mismatched[:5]}"
        raise SystemExit(msg)
    if failed != 6 or retries != 6 or len(seen) != 2 * USERS + 6:
        msg = f"expected 6 retried 503s and {2 * USERS + 6} requests, got {failed}, {retries}, {len(seen)}"
        raise SystemExit(msg)
    if elapsed < (2 * USERS + 6 - 10) / RATE * 0.9:
        msg = f"the limiter let {len(seen)} requests through in {elapsed:.3f}s"
        raise SystemExit(msg)
    print("OK: every request, retries included, carried its own task's correlation id")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
