"""The Redis-shared retry budget: when local calls reach Redis, and that none is lost when Redis fails."""

from __future__ import annotations

import redis as redis_lib

from commtel.retries import RetryBudget
from tests.harness.clock import FakeClock


def test_calls_reach_redis_once_a_bucket_has_passed(redis_url: str, clock: FakeClock) -> None:
    """Calls are flushed when a full bucket width (here 1 s) has passed since the last flush, not before."""
    depositor = RetryBudget("flush", ratio=0.5, min_retries=0, period=10, redis=redis_url)
    spender = RetryBudget("flush", ratio=0.5, min_retries=0, period=10, redis=redis_url)
    depositor.record_call(clock.now)
    depositor.record_call(clock.now + 0.999)
    assert spender.try_acquire(clock.now + 0.999) is False  # nothing flushed yet
    depositor.record_call(clock.now + 1.0)  # exactly one bucket later: the three calls go out
    # 3 calls x 0.5 = 1.5 retries: the first and the second fit under it, the third does not
    assert [spender.try_acquire(clock.now + 1.0) for _ in range(3)] == [True, True, False]
    assert spender.denied == 2


def test_calls_held_back_by_a_redis_error_are_sent_later(redis_url: str, clock: FakeClock) -> None:
    """A failed flush keeps its calls; the next successful round trip carries them."""
    client = redis_lib.Redis.from_url(redis_url)
    budget = RetryBudget("held", ratio=0.5, min_retries=0, period=10, redis=redis_url)
    budget.record_call(clock.now + 1.0)  # flushed: creates the budget's key
    keys = list(client.scan_iter("*held*"))
    assert keys
    for key in keys:
        client.delete(key)
        client.set(key, "not a hash")  # every script call now fails with WRONGTYPE
    budget.record_call(clock.now + 2.0)  # flush fails: the call stays pending
    budget.record_call(clock.now + 3.0)  # and again: two pending
    for key in keys:
        client.delete(key)
    assert budget.try_acquire(clock.now + 3.0) is True  # the two held calls earn one retry
    assert budget.try_acquire(clock.now + 3.0) is False
    client.close()


def test_a_retry_decision_also_flushes_and_restarts_the_flush_clock(redis_url: str, clock: FakeClock) -> None:
    """try_acquire sends the pending calls; the next flush is due a bucket width after it."""
    budget = RetryBudget("restart", ratio=1.0, min_retries=0, period=10, redis=redis_url)
    other = RetryBudget("restart", ratio=1.0, min_retries=0, period=10, redis=redis_url)
    budget.record_call(clock.now)  # pending
    assert budget.try_acquire(clock.now + 0.5) is True  # flushes 1 call, takes 1 retry
    budget.record_call(clock.now + 1.2)  # 0.7 s after the flush: stays pending
    assert other.try_acquire(clock.now + 1.2) is False  # 1 call, 1 retry
    budget.record_call(clock.now + 1.5)  # 1 s after the flush: both pending calls go out
    assert other.try_acquire(clock.now + 1.5) is True  # 3 calls, 1 retry
