"""The adaptive limiter against a dependency with a knee, in virtual time (deterministic, about a second of CPU).

The dependency: 50 ms unloaded, knee at 20 calls in flight, latency growing as
``(n / knee) ** 1.5`` beyond it (throughput falls past the knee), offered twice its
capacity as open-loop traffic. The same experiment runs in real time in ``./dev bench``.
"""

from __future__ import annotations

import random

import pytest

from commtel.concurrency import AdaptiveLimiter
from commtel.simulator import LatencyModel
from tests.concurrency.knee_sim import simulate


BASE_S, KNEE, EXPONENT = 0.05, 20.0, 1.5
RATE = 2 * 30 / BASE_S  # twice the capacity of the largest knee used below
WARMUP_S = 5.0


def _model(knee: float = KNEE) -> LatencyModel:
    return LatencyModel(base_latency_s=BASE_S, knee=knee, exponent=EXPONENT, jitter=0.1)


def _limiter(seed: int = 1) -> AdaptiveLimiter:
    return AdaptiveLimiter("knee", random=random.Random(seed).random)  # defaults: no limit configured


@pytest.fixture(scope="module")
def unloaded_p99() -> float:
    return simulate(_model(), rate=5, duration=200).p99(0, 200)


def _best_fixed(knee: float) -> tuple[float, int]:
    """(goodput, limit) of the best fixed limit in a sweep around the knee."""
    sweep = sorted({max(1, round(knee * f)) for f in (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)})
    return max((simulate(_model(knee), rate=RATE, duration=15, limit=n).goodput(3, 15), n) for n in sweep)


def test_no_limit_collapses_and_twice_the_knee_queues(unloaded_p99: float) -> None:
    """The contrast: without a limit latency runs away; a fixed 2x-knee limit keeps goodput but not latency."""
    unlimited = simulate(_model(), rate=RATE, duration=10)
    assert unlimited.p99(5, 10) > 20 * unloaded_p99
    twice = simulate(_model(), rate=RATE, duration=20, limit=int(2 * KNEE))
    best, _ = _best_fixed(KNEE)
    assert twice.p99(WARMUP_S, 20) > 2.5 * unloaded_p99
    assert twice.goodput(WARMUP_S, 20) < 0.8 * best


def test_adaptive_limit_matches_the_best_fixed_limit(unloaded_p99: float) -> None:
    """With defaults, >= 0.9x the best fixed limit's goodput at p99 <= 1.5x the unloaded p99."""
    best, best_limit = _best_fixed(KNEE)
    assert KNEE * 0.75 <= best_limit <= KNEE * 1.25
    for seed in (1, 2, 3):
        run = simulate(_model(), rate=RATE, duration=30, adaptive=_limiter(seed), seed=seed)
        assert run.goodput(WARMUP_S, 30) >= 0.9 * best, seed
        assert run.p99(WARMUP_S, 30) <= 1.5 * unloaded_p99, seed


@pytest.mark.parametrize(("before", "after"), [(20.0, 10.0), (10.0, 30.0)])
def test_reconverges_within_ten_seconds_after_the_knee_moves(unloaded_p99: float, before: float, after: float) -> None:
    """After the knee moves (down or up), goodput and p99 are back within bounds in < 10 s and stay there."""
    best, _ = _best_fixed(after)
    run = simulate(_model(before), rate=RATE, duration=40, adaptive=_limiter(), knee_changes=((20.0, after),))
    settled = run.converged_after(20.0, 40.0, min_goodput=0.9 * best, max_p99=1.5 * unloaded_p99)
    assert settled < 10.0
    limit = run.traced(39.0)
    assert after * 0.9 <= limit <= after * 1.5
