"""Backoff arithmetic (hypothesis) and the rule that a zero delay never sleeps."""

from __future__ import annotations

import asyncio
import time

import pytest

from hypothesis import given
from hypothesis import strategies as st

from commtel import RetryConfig, RetryPolicy
from commtel.retries._core import compute_backoff
from tests.retry.helpers import Flaky


configs = st.builds(
    RetryConfig,
    base_delay=st.floats(0, 10),
    max_delay=st.floats(0, 60),
    backoff_factor=st.floats(1, 10),
    jitter=st.sampled_from(["none", "proportional", "full", "equal", "decorrelated", True, False]),
    jitter_factor=st.floats(0, 1),
)


@given(config=configs, retry=st.integers(1, 2000), previous=st.floats(0, 1e6), rand=st.floats(0, 1))
def test_backoff_stays_within_bounds(config: RetryConfig, retry: int, previous: float, rand: float) -> None:
    """For any configuration, retry number and random draw, the delay is within [0, max_delay]."""
    delay = compute_backoff(config, retry, previous, lambda: rand)
    assert 0 <= delay <= config.max_delay


@given(retry=st.integers(1, 12))
def test_backoff_without_jitter_is_exponential(retry: int) -> None:
    """Without jitter the delay is base * factor^(retry-1), capped."""
    config = RetryConfig(base_delay=0.5, backoff_factor=2, max_delay=100, jitter=False)
    assert compute_backoff(config, retry, 0.0) == min(100, 0.5 * 2 ** (retry - 1))


@given(rand=st.floats(0, 1), retry=st.integers(1, 6))
def test_jitter_modes_cover_their_ranges(rand: float, retry: int) -> None:
    """Full jitter spans [0, d], equal [d/2, d], proportional d ± factor, decorrelated [base, 3*prev]."""
    d = min(30.0, 1.0 * 2 ** (retry - 1))
    assert 0 <= compute_backoff(RetryConfig(jitter="full"), retry, 0, lambda: rand) <= d
    assert d / 2 <= compute_backoff(RetryConfig(jitter="equal"), retry, 0, lambda: rand) <= d
    proportional = compute_backoff(RetryConfig(jitter=True, jitter_factor=0.1), retry, 0, lambda: rand)
    assert d * 0.9 - 1e-9 <= proportional <= min(30.0, d * 1.1) + 1e-9
    decorrelated = compute_backoff(RetryConfig(jitter="decorrelated"), retry, 4.0, lambda: rand)
    assert 1.0 <= decorrelated <= 12.0


def test_zero_delay_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a zero backoff neither time.sleep nor asyncio.sleep is called (sleep(0) costs ~90 µs)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    real_asleep = asyncio.sleep

    async def fake_asleep(seconds: float, *args: object) -> None:
        slept.append(seconds)
        await real_asleep(0)

    policy = RetryPolicy(max_attempts=3, base_delay=0)
    assert policy.call(Flaky(ConnectionError(), ConnectionError())) == "ok"

    async def main() -> str:
        monkeypatch.setattr(asyncio, "sleep", fake_asleep)
        return await policy.acall(_async(Flaky(ConnectionError(), ConnectionError())))

    assert asyncio.run(main()) == "ok"
    assert slept == []


def _async(body: Flaky):  # type: ignore[no-untyped-def]
    async def fn() -> object:
        return body()

    return fn


def test_set_testing_makes_waits_instant() -> None:
    """commtel.testing.set_testing() turns real backoff waits off for users' own tests."""
    from commtel.testing import set_testing

    policy = RetryPolicy(max_attempts=3, base_delay=5, jitter=False)
    started = time.monotonic()
    with set_testing():
        assert policy.call(Flaky(ConnectionError(), ConnectionError())) == "ok"
    assert time.monotonic() - started < 1
