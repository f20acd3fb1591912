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


# -- exact values: every header's name in problems and sources, both sides of every bound ---------

_NUMERIC_HEADERS = (
    "X-RateLimit-Remaining",
    "RateLimit-Remaining",
    "X-RateLimit-Limit",
    "RateLimit-Limit",
    "X-RateLimit-Reset-After",
    "X-RateLimit-Reset",
    "RateLimit-Reset",
)


@pytest.mark.parametrize(("value", "problem"), [("lots", "unparsable value 'lots'"), ("-3", "invalid value '-3'")])
def test_every_rejected_header_is_reported_by_name(value: str, problem: str) -> None:
    """Each numeric header (and Retry-After, as a number) is named in its problem, in reading order."""
    feedback = _parse(429, {"Retry-After": value, **dict.fromkeys(_NUMERIC_HEADERS, value)})
    expected = (
        ["Retry-After: unparsable value 'lots' ignored"] if value == "lots" else [f"Retry-After: {problem} ignored"]
    ) + [f"{name}: {problem} ignored" for name in _NUMERIC_HEADERS]
    assert feedback.problems == tuple(expected)
    assert (feedback.delay_s, feedback.source, feedback.remaining, feedback.limit) == (1.0, "status", None, None)


def test_a_bad_policy_parameter_names_the_policy_header() -> None:
    feedback = _parse(200, {"RateLimit-Policy": '"d";q=-1;w=60'})
    assert feedback.problems == ("RateLimit-Policy: d q='-1' ignored",)


def test_each_reset_header_is_the_source_of_its_wait() -> None:
    """The header that decided the wait is named in source; a bare 429 names the status; no wait names nothing."""
    cases = {
        "X-RateLimit-Reset-After": "X-RateLimit-Reset-After",
        "X-RateLimit-Reset": "X-RateLimit-Reset",
        "RateLimit-Reset": "RateLimit-Reset",
    }
    for header, source in cases.items():
        assert (_parse(429, {header: "9"}).delay_s, _parse(429, {header: "9"}).source) == (9.0, source)
    ietf = _parse(429, {"RateLimit": '"d";r=0;t=9', "RateLimit-Reset": "5"})
    assert (ietf.delay_s, ietf.source) == (9.0, "RateLimit")
    assert _parse(429, {}).source == "status"
    assert _parse(200, {"X-RateLimit-Reset": "9"}).source == ""


def test_split_and_x_headers_report_remaining_and_limit() -> None:
    split = _parse(200, {"RateLimit-Remaining": "3", "RateLimit-Limit": "50"})
    assert (split.remaining, split.limit) == (3, 50)
    x_headers = _parse(200, {"X-RateLimit-Remaining": "4", "X-RateLimit-Limit": "60", "RateLimit-Limit": "50"})
    assert (x_headers.remaining, x_headers.limit) == (4, 60)


def test_policy_alone_reports_the_smallest_quota() -> None:
    """Without a RateLimit field, the limit is the smallest q among the policies that state one."""
    feedback = _parse(200, {"RateLimit-Policy": '"a";q=100;w=60, "b";w=1, "c";q=10;w=3600'})
    assert (feedback.limit, feedback.remaining, feedback.delay_s) == (10, None, None)


def test_headers_as_pairs_are_read_too() -> None:
    assert _parse(429, [("retry-AFTER", "7")]).delay_s == 7.0  # type: ignore[arg-type]


def test_retry_after_decimal_past_date_and_bad_date() -> None:
    assert _parse(429, {"Retry-After": "1.5"}).delay_s == 1.5
    past = format_datetime(datetime.fromtimestamp(NOW - 30, tz=timezone.utc), usegmt=True)
    assert _parse(429, {"Retry-After": past}).delay_s == 0.0
    assert _parse(429, {"Retry-After": "soon-ish"}).problems == ("Retry-After: unparsable value 'soon-ish' ignored",)


@pytest.mark.parametrize(
    ("reset", "delay"),
    [
        ("1000000000", 0.0),  # exactly the epoch-seconds threshold: an epoch in the past
        (str(int(NOW) - 10), 0.0),
        ("999999999", 3600.0),  # just below it: a delta (clamped to max_wait_s)
        ("1000000000000", 0.0),  # exactly the epoch-milliseconds threshold: an epoch in the past
        (str(int(NOW - 10) * 1000), 0.0),
        ("999999999999", 3600.0),  # just below it: epoch seconds far ahead, clamped
    ],
)
def test_reset_thresholds_from_both_sides(reset: str, delay: float) -> None:
    feedback = _parse(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert feedback.delay_s == delay


def test_a_wait_of_exactly_the_maximum_is_not_clamped() -> None:
    exact = _parse(429, {"Retry-After": "900"}, max_wait_s=900.0)
    assert (exact.delay_s, exact.clamped, exact.problems) == (900.0, False, ())
    above = _parse(429, {"Retry-After": "901"}, max_wait_s=900.0)
    assert (above.delay_s, above.clamped, above.problems) == (
        900.0,
        True,
        ("Retry-After: wait of 901s exceeds max_server_wait_s=900; clamped",),
    )
