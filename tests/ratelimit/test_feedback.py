"""Server feedback: header parsing, blocking every caller of a key, clamping hostile values, a real server."""

from __future__ import annotations

import logging
import math
import time

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from commtel import RateLimiter
from commtel.ratelimit import TokenBucket, parse_feedback
from commtel.simulator import SimulatedPlatform
from tests.harness.clock import FakeClock


NOW = 1_700_000_000.0


def _parse(status: int, headers: dict[str, str], max_wait_s: float = 3600.0):  # type: ignore[no-untyped-def]
    return parse_feedback(status, headers, now_wall=NOW, max_wait_s=max_wait_s)


def test_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as delta seconds or as an HTTP-date."""
    assert _parse(429, {"Retry-After": "7"}).delay_s == 7.0
    date = format_datetime(datetime.fromtimestamp(NOW, tz=timezone.utc) + timedelta(seconds=30), usegmt=True)
    parsed = _parse(503, {"retry-after": date})
    assert parsed.delay_s == pytest.approx(30.0)
    assert parsed.source == "Retry-After"


def test_x_ratelimit_reset_epoch_delta_and_millis() -> None:
    """X-RateLimit-Reset is an epoch (seconds or ms) or a delta; remaining 0 blocks even on a 200."""
    assert _parse(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 40)}).delay_s == 40.0
    assert _parse(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}).delay_s == 12.0
    assert _parse(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW * 1000) + 5000)}).delay_s == 5.0
    assert _parse(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}).delay_s == 1.5
    assert _parse(200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "12"}).delay_s is None


def test_ietf_ratelimit_headers() -> None:
    """IETF RateLimit (both drafts), split RateLimit-* headers and RateLimit-Policy are understood."""
    current = _parse(200, {"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=100;w=60'})
    assert (current.delay_s, current.remaining, current.limit) == (30.0, 0, 100)
    older = _parse(200, {"RateLimit": "limit=10, remaining=0, reset=8"})
    assert (older.delay_s, older.limit) == (8.0, 10)
    split = _parse(429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "4"})
    assert split.delay_s == 4.0
    policy_only = _parse(200, {"RateLimit": '"default";r=0', "RateLimit-Policy": '"default";q=5;w=60'})
    assert policy_only.delay_s == 60.0


def test_429_without_hints_waits_the_default() -> None:
    """A bare 429 blocks for the default wait; a bare 503 or 200 does not block."""
    assert _parse(429, {}).delay_s == 1.0
    assert _parse(503, {}).delay_s is None
    assert _parse(200, {}).delay_s is None


def test_hostile_values_are_rejected_or_clamped() -> None:
    """Negative, garbage and year-ahead values never produce a negative or unbounded wait."""
    negative = _parse(429, {"Retry-After": "-5"})
    assert negative.delay_s == 1.0 and negative.problems
    garbage = _parse(429, {"Retry-After": "soon-ish", "X-RateLimit-Reset": "NaN"})
    assert garbage.delay_s == 1.0 and len(garbage.problems) == 2
    year = _parse(429, {"Retry-After": str(365 * 86400)}, max_wait_s=900.0)
    assert (year.delay_s, year.clamped) == (900.0, True)
    far_date = _parse(
        200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 400 * 86400)}, max_wait_s=900.0
    )
    assert far_date.delay_s == 900.0 and far_date.clamped
    assert not math.isnan(_parse(429, {"Retry-After": "inf"}).delay_s or 0.0)


def test_feedback_blocks_every_caller_of_the_key_until_reset(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After feedback, the key is refused until the server's reset; other keys are not; hostile values are logged."""
    clock = FakeClock().install(monkeypatch)
    limiter = RateLimiter(TokenBucket(100.0, 100), name="api", max_server_wait_s=120.0)
    assert limiter.feedback("alice", 429, {"Retry-After": "30"}) == 30.0
    blocked = limiter.try_acquire("alice")
    assert not blocked and blocked.retry_after_s == pytest.approx(30.0)
    assert limiter.try_acquire("bob")
    limiter.acquire("alice", timeout=60)
    assert clock.sleeps == [pytest.approx(30.0)]
    with caplog.at_level(logging.WARNING, logger="commtel.ratelimit"):
        assert limiter.feedback("alice", 429, {"Retry-After": str(10**9)}) == 120.0
    assert "clamped" in caplog.text and "alice" not in caplog.text


def test_simulated_platform_gives_no_429_after_the_first_per_window() -> None:
    """Against a real quota server, feedback-driven waiting leaves at most one 429 per window."""
    window_s, quota = 1.0, 5
    limiter = RateLimiter(TokenBucket(1000.0, 1000), name="sim")  # far looser than the server
    statuses: list[int] = []
    with SimulatedPlatform("sim", limit=quota, window_s=window_s) as platform, httpx.Client() as client:
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            limiter.acquire("client-1", timeout=5.0)
            response = client.get(f"{platform.url}/api/items", headers={"X-Client-ID": "client-1"})
            statuses.append(response.status_code)
            limiter.feedback("client-1", response.status_code, response.headers)
        elapsed = time.monotonic() - start
    windows = math.ceil(elapsed / window_s) + 1
    assert statuses.count(429) <= windows
    assert all(a != 429 or b != 429 for a, b in zip(statuses, statuses[1:]))  # a 429 is never followed by another
    assert statuses.count(200) >= quota * 2
