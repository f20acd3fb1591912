"""The sans-I/O latency quantile: within 5 %, needs min_samples, forgets after its window."""

from __future__ import annotations

import random

import pytest

from commtel.hedging import LatencyQuantile


def test_quantile_is_within_five_percent_of_the_true_one() -> None:
    """Over many spread latencies the p95 reported is the true p95 rounded up by at most 5 %."""
    rng = random.Random(3)
    latencies = [rng.lognormvariate(-3, 0.8) for _ in range(5000)]
    q = LatencyQuantile(0.95, window_s=60, min_samples=20)
    for latency in latencies:
        q.add(latency, 10.0)
    true = sorted(latencies)[int(0.95 * len(latencies)) - 1]
    value = q.value(10.0)
    assert value is not None
    assert true <= value <= true * 1.05 * 1.05


def test_no_answer_below_min_samples() -> None:
    """Fewer than min_samples latencies: None (a hedge does not guess)."""
    q = LatencyQuantile(0.5, min_samples=3)
    q.add(0.1, 0.0)
    q.add(0.1, 0.0)
    assert q.value(0.0) is None
    q.add(0.1, 0.0)
    assert q.value(0.0) == pytest.approx(0.1, rel=0.05)


def test_old_latencies_fade_out_after_the_window() -> None:
    """Latencies older than the window no longer count; a whole idle window forgets everything."""
    q = LatencyQuantile(0.5, window_s=10, min_samples=1)
    for _ in range(10):
        q.add(1.0, 1.0)
    for _ in range(5):
        q.add(0.01, 6.0)  # next half-window
    assert q.value(6.0) == pytest.approx(1.0, rel=0.05)  # both halves count: 10 of 15 took 1 s
    assert q.value(11.0) == pytest.approx(0.01, rel=0.05)  # the 1 s latencies fell out
    assert q.value(30.0) is None


def test_cached_answer_refreshes_after_enough_new_samples() -> None:
    """The answer is cached; after `refresh` new samples it is recomputed."""
    q = LatencyQuantile(0.5, window_s=1000, min_samples=1, refresh=4)
    q.add(0.01, 0.0)
    assert q.value(0.0) == pytest.approx(0.01, rel=0.05)
    for _ in range(3):
        q.add(1.0, 0.0)
    assert q.value(0.0) == pytest.approx(0.01, rel=0.05)  # 3 new samples: cached
    q.add(1.0, 0.0)
    assert q.value(0.0) == pytest.approx(1.0, rel=0.05)
