"""Hypothesis proofs of each strategy's guarantee on the sans-I/O core, with a fake clock.

Times are multiples of 1/64 s and rates powers of two, so the float arithmetic in
the checks is exact and the bounds are tested without slack.
"""

from __future__ import annotations

import copy

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from commtel.ratelimit._core import Limit, Quota, SlidingWindow, TokenBucket, compile_quota
from commtel.ratelimit._memory import MemoryBackend


TICK = 1 / 64

rates = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
buckets = st.builds(TokenBucket, rate=rates, burst=st.integers(1, 8))
windows = st.builds(SlidingWindow, limit=st.integers(1, 8), window_s=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
# (ticks since the previous request, cost)
arrivals = st.lists(st.tuples(st.integers(0, 128), st.integers(1, 3)), min_size=1, max_size=80)


def _run(quota: Quota, steps: Sequence[tuple[int, int]]) -> list[tuple[float, int, bool, float]]:
    """Feed the arrivals to *quota*; return (time, cost, allowed, retry_after) per request."""
    state = None
    now = 100.0
    out = []
    for ticks, cost in steps:
        now += ticks * TICK
        use = min(cost, quota.capacity)
        state, decision = quota.decide(state, now, use)
        out.append((now, use, decision.allowed, decision.retry_after_s))
    return out


def _admitted(results: list[tuple[float, int, bool, float]]) -> list[tuple[float, int]]:
    return [(t, cost) for t, cost, allowed, _ in results if allowed]


def _check_bucket(bucket: TokenBucket, admitted: list[tuple[float, int]]) -> None:
    for i in range(len(admitted)):
        total = 0
        for j in range(i, len(admitted)):
            total += admitted[j][1]
            span = admitted[j][0] - admitted[i][0]
            assert total <= bucket.burst + bucket.rate * span + 1e-6, (i, j, total, span)


def _check_window(window: SlidingWindow, admitted: list[tuple[float, int]]) -> None:
    for start, _ in admitted:  # the fullest window [a, a + W) starts at an admission
        inside = sum(cost for t, cost in admitted if start <= t < start + window.window_s)
        assert inside <= window.limit, (start, inside)


@given(buckets, arrivals)
def test_token_bucket_admits_at_most_burst_plus_rate_times_t(bucket: TokenBucket, steps: list[tuple[int, int]]) -> None:
    """In every interval of length t a token bucket admits at most burst + rate·t units."""
    _check_bucket(bucket, _admitted(_run(compile_quota([bucket]), steps)))


@given(windows, arrivals)
def test_sliding_window_never_exceeds_its_limit_in_any_window(
    window: SlidingWindow, steps: list[tuple[int, int]]
) -> None:
    """In every window [a, a + W) a sliding window admits at most its limit."""
    _check_window(window, _admitted(_run(compile_quota([window]), steps)))


@given(st.lists(windows, min_size=1, max_size=3), st.one_of(st.none(), buckets), arrivals)
def test_all_limits_hold_at_once(
    wins: list[SlidingWindow], bucket: TokenBucket | None, steps: list[tuple[int, int]]
) -> None:
    """Several windows (and a bucket) on one key all hold simultaneously."""
    limits: list[Limit] = [*wins, *([bucket] if bucket else [])]
    admitted = _admitted(_run(compile_quota(limits), steps))
    for window in wins:
        _check_window(window, admitted)
    if bucket is not None:
        _check_bucket(bucket, admitted)


@given(st.lists(windows, min_size=1, max_size=2), st.one_of(st.none(), buckets), arrivals)
def test_a_rejected_request_consumes_nothing(
    wins: list[SlidingWindow], bucket: TokenBucket | None, steps: list[tuple[int, int]]
) -> None:
    """Dropping the rejected requests from the sequence changes no other decision."""
    quota = compile_quota([*wins, *([bucket] if bucket else [])])
    results = _run(quota, steps)
    kept = []
    previous = 0
    for (ticks, cost), (_, _, allowed, _) in zip(steps, results, strict=True):
        previous += ticks
        if allowed:
            kept.append((previous, cost))
            previous = 0
    replay = _run(compile_quota(quota.limits), kept)
    assert [r[2] for r in replay] == [True] * len(kept)


@given(st.lists(windows, min_size=1, max_size=2), st.one_of(st.none(), buckets), arrivals)
def test_retry_after_is_exact(
    wins: list[SlidingWindow], bucket: TokenBucket | None, steps: list[tuple[int, int]]
) -> None:
    """A rejected request is admitted exactly retry_after_s later, and not noticeably sooner."""
    quota = compile_quota([*wins, *([bucket] if bucket else [])])
    state = None
    now = 100.0
    for ticks, cost in steps:
        now += ticks * TICK
        use = min(cost, quota.capacity)
        state, decision = quota.decide(state, now, use)
        if not decision.allowed:
            # Probes on copies: a peek may drop expired entries (time only moves forward).
            _, later = quota.decide(copy.deepcopy(state), now + decision.retry_after_s, use, False)
            assert later.allowed
            if decision.retry_after_s > 1e-3:
                _, sooner = quota.decide(copy.deepcopy(state), now + decision.retry_after_s - 1e-3, use, False)
                assert not sooner.allowed


@settings(max_examples=50)
@given(
    st.one_of(windows.map(lambda w: [w]), buckets.map(lambda b: [b])),
    st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(["a", "b", "c"])), max_size=60),
)
def test_expiring_idle_keys_never_changes_a_decision(limits: list[Limit], steps: list[tuple[int, str]]) -> None:
    """The memory store (which drops idle keys) decides exactly like a store that keeps everything."""
    quota = compile_quota(limits)
    store = MemoryBackend().bind("prop")
    plan = store.plan([("", quota)])
    kept: dict[str, object] = {}
    now = 100.0
    for ticks, key in steps:
        now += ticks * TICK
        kept[key], expected = quota.decide(kept.get(key), now, 1)
        assert store.decide(plan, key, now, 1) == expected
