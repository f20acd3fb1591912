"""The rate-limit core against reference models, both directions: never too much, and always enough.

The models keep the whole history of admissions (a window counts the units it holds; a
bucket refills its tokens continuously), so they share no arithmetic with the core's
GCRA and log-with-head. With binary rates and 1/64 s ticks every figure is exact and
compared with ``==``; with rates like 1/3 or 0.7 the decisions are compared on both
sides of a small tolerance: the core never admits what the model refuses by more than
it, and never refuses what the model admits by more than it.
"""

from __future__ import annotations

import math
import random

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from commtel.errors import ConfigurationError
from commtel.ratelimit._core import (
    Limit,
    RateLimitDecision,
    SlidingWindow,
    TokenBucket,
    compile_quota,
    merge,
)


TICK = 1 / 64


@dataclass
class WindowModel:
    """Units admitted in the last *window_s* seconds, from the full log."""

    limit: int
    window_s: float
    log: list[tuple[float, int]] = field(default_factory=list)

    def used(self, now: float) -> int:
        return sum(cost for t, cost in self.log if t > now - self.window_s)

    def wait(self, now: float, cost: int) -> float:
        """Seconds until *cost* more units fit (inf if they never can)."""
        if cost > self.limit:
            return math.inf
        excess = self.used(now) + cost - self.limit
        if excess <= 0:
            return 0.0
        for t, units in self.log:
            if t <= now - self.window_s:
                continue
            excess -= units
            if excess <= 0:
                return t + self.window_s - now
        return 0.0


@dataclass
class BucketModel:
    """Tokens refilled continuously at *rate*, capped at *burst*."""

    rate: float
    burst: int
    tokens: float = -1.0
    at: float = 0.0

    def level(self, now: float) -> float:
        if self.tokens < 0:
            return float(self.burst)
        return min(float(self.burst), self.tokens + (now - self.at) * self.rate)

    def take(self, now: float, cost: int) -> None:
        self.tokens, self.at = self.level(now) - cost, now


def _models(limits: Sequence[Limit]) -> tuple[list[WindowModel], BucketModel | None]:
    windows = [WindowModel(w.limit, w.window_s) for w in limits if isinstance(w, SlidingWindow)]
    bucket = next((BucketModel(b.rate, b.burst) for b in limits if isinstance(b, TokenBucket)), None)
    return windows, bucket


rates = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
buckets = st.builds(TokenBucket, rate=rates, burst=st.integers(1, 8))
windows = st.builds(SlidingWindow, limit=st.integers(1, 12), window_s=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
arrivals = st.lists(st.tuples(st.integers(0, 96), st.integers(1, 3)), min_size=1, max_size=120)


@settings(max_examples=300)
@given(st.lists(windows, min_size=1, max_size=3), arrivals)
def test_windows_decide_exactly_like_the_log(wins: list[SlidingWindow], steps: list[tuple[int, int]]) -> None:
    """Allowed, retry-after, remaining, binding limit and reset all equal the model's."""
    quota = compile_quota(wins)
    models, _ = _models(quota.limits)
    longest = max(w.window_s for w in wins)
    state = None
    now = 50.0
    for ticks, cost in steps:
        now += ticks * TICK
        use = min(cost, quota.capacity)
        free = [m.limit - m.used(now) - use for m in models]
        allowed = all(f >= 0 for f in free)
        # On a refusal only the refusing windows bind, each showing the units it holds now.
        shown = [f if allowed else max(0, f + use) for f in free]
        candidates = [i for i in range(len(models)) if allowed or free[i] < 0]
        binding = min(candidates, key=lambda i: (shown[i], i))
        state, decision = quota.decide(state, now, use)
        assert decision.allowed is allowed
        assert decision.remaining == shown[binding]
        assert decision.limit == models[binding].limit
        assert decision.retry_after_s == (0.0 if allowed else max(m.wait(now, use) for m in models))
        if allowed:
            for m in models:
                m.log.append((now, use))
        newest = max((t for m in models for t, _ in m.log if t > now - longest), default=None)
        assert decision.reset_s == (0.0 if newest is None else newest + longest - now)


@settings(max_examples=300)
@given(buckets, arrivals)
def test_bucket_decides_exactly_like_refilling_tokens(bucket: TokenBucket, steps: list[tuple[int, int]]) -> None:
    """Admit iff the tokens cover the cost; remaining, waits and time-to-full match the model."""
    quota = compile_quota([bucket])
    model = BucketModel(bucket.rate, bucket.burst)
    state = None
    now = 50.0
    for ticks, cost in steps:
        now += ticks * TICK
        use = min(cost, quota.capacity)
        level = model.level(now)
        state, decision = quota.decide(state, now, use)
        assert decision.allowed is (level >= use)
        assert decision.limit == bucket.burst
        if decision.allowed:
            model.take(now, use)
            assert (decision.retry_after_s, decision.remaining) == (0.0, math.floor(level - use))
            assert decision.reset_s == (bucket.burst - model.level(now)) / bucket.rate
        else:
            assert decision.retry_after_s == (use - level) / bucket.rate
            assert decision.remaining == math.floor(level)
            assert decision.reset_s == (bucket.burst - level) / bucket.rate


# Rates and windows whose arithmetic does not come out exact in binary floating point.
odd_rates = st.sampled_from([1 / 3, 0.7, 300 / 900, 10 / 7, 2.2, 100 / 60])
odd_buckets = st.builds(TokenBucket, rate=odd_rates, burst=st.integers(1, 10))
odd_windows = st.builds(SlidingWindow, limit=st.integers(1, 12), window_s=st.sampled_from([0.3, 0.7, 1.1, 60 / 7]))
odd_arrivals = st.lists(st.tuples(st.floats(0, 2, allow_nan=False), st.integers(1, 3)), min_size=1, max_size=120)
SLACK = 1e-6  # seconds of clock, or units of the bucket


@settings(max_examples=300)
@given(odd_buckets, odd_arrivals)
def test_bucket_with_inexact_rates_is_neither_looser_nor_stricter(
    bucket: TokenBucket, steps: list[tuple[float, int]]
) -> None:
    """Admitted when the model has the tokens (up to rounding), refused when it has not."""
    quota = compile_quota([bucket])
    model = BucketModel(bucket.rate, bucket.burst)
    state = None
    now = 1000.0
    for dt, cost in steps:
        now += dt
        use = min(cost, quota.capacity)
        level = model.level(now)
        state, decision = quota.decide(state, now, use)
        if level >= use + SLACK:
            assert decision.allowed, (now, level, use)
        elif level < use - SLACK:
            assert not decision.allowed, (now, level, use)
            assert decision.retry_after_s == pytest.approx((use - level) / bucket.rate, abs=SLACK)
        if decision.allowed:
            model.take(now, use)


@settings(max_examples=300)
@given(st.lists(odd_windows, min_size=1, max_size=2), odd_arrivals)
def test_windows_with_inexact_lengths_are_neither_looser_nor_stricter(
    wins: list[SlidingWindow], steps: list[tuple[float, int]]
) -> None:
    """Every window admits exactly while it has room; the wait is when the oldest units leave."""
    quota = compile_quota(wins)
    models, _ = _models(quota.limits)
    state = None
    now = 1000.0
    for dt, cost in steps:
        now += dt
        use = min(cost, quota.capacity)
        near_edge = any(abs((t + m.window_s) - now) < SLACK for m in models for t, _ in m.log)
        allowed = all(m.used(now) + use <= m.limit for m in models)
        state, decision = quota.decide(state, now, use)
        if not near_edge:
            assert decision.allowed is allowed
            if not allowed:
                assert decision.retry_after_s == pytest.approx(max(m.wait(now, use) for m in models), abs=SLACK)
        if decision.allowed:
            for m in models:
                m.log.append((now, use))


@pytest.mark.parametrize(("limit", "window_s", "seed"), [(20, 1.0, 1), (37, 2.5, 2), (60, 1.0, 3)])
def test_a_long_lived_busy_key_keeps_deciding_exactly(limit: int, window_s: float, seed: int) -> None:
    """Thousands of admissions on one key (the log compacts many times) never drift from the model."""
    rnd = random.Random(seed)
    for limits in (
        [SlidingWindow(limit, window_s)],
        [SlidingWindow(limit, window_s), SlidingWindow(limit * 3, window_s * 4)],
    ):
        quota = compile_quota(limits)
        models, _ = _models(quota.limits)
        state = None
        now = 10.0
        admitted = 0
        for _ in range(3000):
            now += rnd.choice([0, 0, 1, 2, 5]) * TICK
            for m in models:  # the model forgets what left its window, to stay fast
                m.log = [(t, c) for t, c in m.log if t > now - m.window_s]
            allowed = all(m.used(now) + 1 <= m.limit for m in models)
            state, decision = quota.decide(state, now, 1)
            assert decision.allowed is allowed
            if allowed:
                admitted += 1
                for m in models:
                    m.log.append((now, 1))
        assert admitted > limit * 10  # many windows' worth went through


def test_a_peek_changes_nothing() -> None:
    """commit=False decides like a real call but leaves the state as it was."""
    for limits in (
        [TokenBucket(1.0, 2)],
        [SlidingWindow(2, 1.0)],
        [SlidingWindow(2, 1.0), SlidingWindow(3, 5.0)],
        [TokenBucket(1.0, 2), SlidingWindow(2, 1.0)],
    ):
        quota = compile_quota(limits)
        state, first = quota.decide(None, 100.0, 1)
        peeked_state, peek = quota.decide(state, 100.0, 1, False)
        assert peeked_state is state
        state, real = quota.decide(state, 100.0, 1)
        assert peek == real
        assert 0 < peek.reset_s <= 5.0
        _, after = quota.decide(state, 100.0, 1)
        assert not after.allowed


def test_mixed_quota_needs_both_and_binds_the_tighter() -> None:
    """A bucket and a window on one key: both must admit; the one with fewer units left is reported."""
    quota = compile_quota([TokenBucket(1.0, 3), SlidingWindow(5, 10.0)])
    state = None
    decisions = []
    for t in (0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0):
        state, decision = quota.decide(state, t, 1)
        decisions.append((decision.allowed, decision.remaining, decision.limit))
    assert decisions == [
        (True, 2, 3),
        (True, 1, 3),
        (True, 0, 3),
        (False, 0, 3),
        (True, 0, 3),
        (True, 0, 3),  # 5 in the window now: both show 0, the first (the bucket) binds
        (False, 0, 5),  # the window refuses; the bucket would admit, so the window binds
        (False, 0, 5),
    ]
    assert quota.capacity == 3
    assert quota.horizon_s == 10.0
    rejected_state, rejected = quota.decide(state, 4.0, 1)
    assert rejected_state is state
    assert rejected.retry_after_s == 6.0  # the first unit leaves the window at 10 s


def test_merge_takes_the_stricter_of_two_parts() -> None:
    """Allowed only if both are; the larger wait and reset; ties keep the first."""
    a = RateLimitDecision(True, 0.0, 3, 10, 2.0)
    b = RateLimitDecision(False, 1.5, 1, 5, 4.0)
    assert merge(a, b) == RateLimitDecision(False, 1.5, 1, 5, 4.0)
    assert merge(b, a) == RateLimitDecision(False, 1.5, 1, 5, 4.0)
    c = RateLimitDecision(True, 0.0, 3, 7, 1.0)
    assert merge(a, c) == RateLimitDecision(True, 0.0, 3, 10, 2.0)
    assert merge(c, a) == RateLimitDecision(True, 0.0, 3, 7, 2.0)
    tighter = RateLimitDecision(True, 0.0, 1, 4, 0.5)
    assert merge(a, tighter) == RateLimitDecision(True, 0.0, 1, 4, 2.0)
    looser = RateLimitDecision(False, 2.0, 5, 9, 1.0)
    assert merge(b, looser) == RateLimitDecision(False, 2.0, 1, 5, 4.0)


def test_decision_value_semantics() -> None:
    """Truthiness, equality, hashing, repr and the dict form."""
    yes = RateLimitDecision(True, 0.0, 4, 5, 1.25)
    no = RateLimitDecision(False, 0.5, 0, 5, 1.25)
    assert yes and not no
    assert yes == RateLimitDecision(True, 0.0, 4, 5, 1.25)
    assert yes != no
    assert yes != (True, 0.0, 4, 5, 1.25)
    assert len({yes, RateLimitDecision(True, 0.0, 4, 5, 1.25), no}) == 2
    assert repr(no) == "RateLimitDecision(allowed=False, retry_after_s=0.5, remaining=0, limit=5, reset_s=1.25)"
    assert yes.as_info() == {"allowed": True, "retry_after_s": 0.0, "remaining": 4, "limit": 5, "reset_s": 1.25}


def test_capacity_and_horizon() -> None:
    """Capacity is the smallest burst or window limit; the horizon the longest memory."""
    assert (compile_quota([TokenBucket(0.5, 4)]).capacity, compile_quota([TokenBucket(0.5, 4)]).horizon_s) == (4, 8.0)
    quota = compile_quota([SlidingWindow(9, 60.0), SlidingWindow(3, 1.0)])
    assert (quota.capacity, quota.horizon_s) == (3, 60.0)
    assert quota.limits == (SlidingWindow(3, 1.0), SlidingWindow(9, 60.0))
    assert repr(compile_quota([SlidingWindow(3, 1.0)])) == "Quota(SlidingWindow(limit=3, window_s=1.0))"
    assert repr(quota) == "Quota(SlidingWindow(limit=3, window_s=1.0), SlidingWindow(limit=9, window_s=60.0))"
    bucket = TokenBucket(2.0, 5)
    assert compile_quota([bucket]).limits == (bucket,)
    assert compile_quota([SlidingWindow(9, 60.0), bucket]).limits == (bucket, SlidingWindow(9, 60.0))


def test_a_cost_above_a_window_limit_waits_forever() -> None:
    """A request larger than the window can hold is refused with an infinite wait."""
    quota = compile_quota([SlidingWindow(2, 1.0), SlidingWindow(5, 10.0)])
    _, decision = quota.decide(None, 0.0, 3)
    assert not decision.allowed
    assert (decision.retry_after_s, decision.reset_s) == (math.inf, 0.0)
    single = compile_quota([SlidingWindow(2, 1.0)])
    _, decision = single.decide(None, 0.0, 3)
    assert (decision.allowed, decision.retry_after_s, decision.remaining, decision.reset_s) == (False, math.inf, 2, 0.0)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([], "^limits must name at least one TokenBucket or SlidingWindow$"),
        ([TokenBucket(1, 1), TokenBucket(2, 2)], "^limits may hold at most one TokenBucket, got 2$"),
        ([SlidingWindow(1, 1.0), "3/s"], "^limits must be TokenBucket or SlidingWindow objects, got '3/s'$"),
    ],
)
def test_compile_rejects_bad_limit_sets(limits: list[Limit], message: str) -> None:
    """Empty sets, two buckets and foreign objects are configuration errors."""
    with pytest.raises(ConfigurationError, match=message):
        compile_quota(limits)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TokenBucket(0, 1), "TokenBucket.rate must be a positive finite number, got 0"),
        (lambda: TokenBucket(math.inf, 1), "TokenBucket.rate must be a positive finite number"),
        (lambda: TokenBucket(True, 1), "TokenBucket.rate must be a positive finite number"),
        (lambda: TokenBucket("1", 1), "TokenBucket.rate must be a positive finite number"),
        (lambda: TokenBucket(1.0, 0), "TokenBucket.burst must be a positive integer, got 0"),
        (lambda: TokenBucket(1.0, 1.5), "TokenBucket.burst must be a positive integer"),
        (lambda: TokenBucket(1.0, True), "TokenBucket.burst must be a positive integer"),
        (lambda: SlidingWindow(0, 1.0), "SlidingWindow.limit must be a positive integer"),
        (lambda: SlidingWindow(1, -1.0), "SlidingWindow.window_s must be a positive finite number"),
    ],
)
def test_limits_reject_bad_values(make: object, message: str) -> None:
    """Each limit names the field and the rule it broke."""
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        make()  # type: ignore[operator]


def test_limits_accept_their_smallest_values() -> None:
    """The smallest valid settings construct."""
    assert TokenBucket(1e-9, 1).burst == 1
    assert SlidingWindow(1, 1e-9).limit == 1


@pytest.mark.parametrize("limits", [[SlidingWindow(20, 1.0)], [SlidingWindow(20, 1.0), SlidingWindow(45, 3.0)]])
def test_a_busy_keys_log_stays_bounded(limits: list[Limit]) -> None:
    """Expired entries are compacted away: the log never holds much more than twice the largest limit."""
    quota = compile_quota(limits)
    largest = max(w.limit for w in quota.limits if isinstance(w, SlidingWindow))
    state = None
    now = 0.0
    peak = 0
    for step in range(5000):
        now += (step % 3) * TICK
        state, _ = quota.decide(state, now, 1)
        peak = max(peak, len(state.times))
    assert peak <= max(largest + 17, 2 * largest) + 1


@pytest.mark.parametrize("limits", [[SlidingWindow(2, 1.0)], [SlidingWindow(2, 1.0), SlidingWindow(5, 3.0)]])
def test_a_caller_with_an_older_clock_reading_cannot_age_units_early(limits: list[Limit]) -> None:
    """A unit admitted at 9.9 after one at 10.0 is stamped 10.0, so both stay until 11.0."""
    quota = compile_quota(limits)
    state, _ = quota.decide(None, 10.0, 1)
    state, second = quota.decide(state, 9.9, 1)
    assert second.allowed
    assert state.times == [10.0, 10.0]
    assert second.reset_s == pytest.approx(max(w.window_s for w in quota.limits) + 0.1)
    _, later = quota.decide(state, 10.95, 1, False)
    assert not later.allowed
    _, after = quota.decide(state, 11.0, 1, False)
    assert after.allowed
