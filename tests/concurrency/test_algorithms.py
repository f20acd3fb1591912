"""Limit algorithms: each one's arithmetic on hand-made windows, and their validation."""

from __future__ import annotations

import math

import pytest

from commtel.concurrency import AIMD, Gradient2, Vegas, Window
from commtel.concurrency._algorithms import algorithm_from
from commtel.errors import ConfigurationError


def _window(rtt_s: float, *, drops: int = 0, in_flight: int = 100) -> Window:
    return Window(rtt_s, 20, drops, in_flight)


def test_gradient2_grows_at_once_by_the_headroom_when_latency_is_at_the_baseline() -> None:
    """No queueing (gradient 1): the limit rises to limit + sqrt(limit)/2 in one window, unsmoothed."""
    assert Gradient2().next_limit(16.0, _window(0.05), 0.05) == pytest.approx(18.0)
    assert Gradient2(headroom=3).next_limit(16.0, _window(0.04), 0.05) == pytest.approx(19.0)


def test_gradient2_shrinks_smoothly_and_at_most_by_half() -> None:
    """Latency 2x the baseline: target = limit/2 + headroom, approached by `smoothing` per window; 4x clamps at 1/2."""
    limit = 100.0
    target = limit * 0.5 + 5.0
    assert Gradient2().next_limit(limit, _window(0.10), 0.05) == pytest.approx(limit + (target - limit) * 0.2)
    assert Gradient2().next_limit(limit, _window(0.20), 0.05) == Gradient2().next_limit(limit, _window(0.10), 0.05)
    assert Gradient2(smoothing=1.0).next_limit(limit, _window(0.10), 0.05) == pytest.approx(target)


def test_gradient2_tolerance_accepts_some_inflation() -> None:
    """With tolerance 1.5, latency 1.4x the baseline is not queueing: the limit grows."""
    assert Gradient2(tolerance=1.5).next_limit(25.0, _window(0.07), 0.05) == pytest.approx(27.5)
    assert Gradient2().next_limit(25.0, _window(0.07), 0.05) < 25.0


def test_gradient2_without_latency_samples_does_not_shrink() -> None:
    """A window of drops only (rtt 0) gives gradient 1."""
    assert Gradient2().next_limit(4.0, _window(0.0, drops=20), 0.05) == pytest.approx(5.0)


def test_aimd_backs_off_on_drops_or_slow_windows_and_adds_otherwise() -> None:
    """A drop or a window over the latency threshold multiplies by backoff_ratio; else +increase."""
    aimd = AIMD(backoff_ratio=0.8, increase=2, latency_threshold_s=0.5)
    assert aimd.next_limit(50.0, _window(0.1, drops=1), 0.1) == pytest.approx(40.0)
    assert aimd.next_limit(50.0, _window(0.6), 0.1) == pytest.approx(40.0)
    assert aimd.next_limit(50.0, _window(0.4), 0.1) == pytest.approx(52.0)
    assert AIMD().next_limit(50.0, _window(60.0), 0.1) == pytest.approx(51.0)  # no threshold: blind to latency


def test_vegas_keeps_the_queue_between_alpha_and_beta() -> None:
    """queued = limit x (1 - baseline/rtt), bounds x log10(limit): grow fast, grow, hold, shrink, drop."""
    vegas, limit = Vegas(), 100.0  # log10 = 2: alpha 6, beta 12
    assert vegas.next_limit(limit, _window(0.0501), 0.05) == pytest.approx(112.0)  # queued ~0.2 <= 2: + beta
    assert vegas.next_limit(limit, _window(0.05 / 0.96), 0.05) == pytest.approx(102.0)  # queued 4 < alpha
    assert vegas.next_limit(limit, _window(0.05 / 0.92), 0.05) == pytest.approx(100.0)  # queued 8: hold
    assert vegas.next_limit(limit, _window(0.05 / 0.80), 0.05) == pytest.approx(98.0)  # queued 20 > beta
    assert vegas.next_limit(limit, _window(0.05, drops=1), 0.05) == pytest.approx(98.0)
    assert vegas.next_limit(5.0, _window(0.05), 0.05) == pytest.approx(5.0 + 6 * max(1.0, math.log10(5)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Gradient2(tolerance=0.9), "tolerance must be >= 1.0"),
        (lambda: Gradient2(smoothing=0), "smoothing must be within"),
        (lambda: Gradient2(headroom=-1), "headroom must be >= 0"),
        (lambda: AIMD(backoff_ratio=1.0), "backoff_ratio must be within"),
        (lambda: AIMD(increase=0), "increase must be > 0"),
        (lambda: AIMD(latency_threshold_s=0), "latency_threshold_s must be > 0"),
        (lambda: Vegas(alpha=6, beta=3), "0 < alpha < beta"),
        (lambda: algorithm_from("bbr"), "algorithm must be one of"),
        (lambda: algorithm_from("aimd", {"backof": 0.5}), "aimd options: got an unexpected keyword"),
        (lambda: algorithm_from(AIMD(), {"increase": 2}), "need the algorithm by name"),
        (lambda: algorithm_from(object()), "have next_limit"),  # type: ignore[arg-type]
    ],
)
def test_bad_algorithm_options_raise_configuration_error(build, message: str) -> None:
    """Every algorithm validates its parameters at construction, naming the fix."""
    with pytest.raises(ConfigurationError, match=message):
        build()


def test_algorithms_by_name_with_options() -> None:
    """Names map to the classes; options reach them."""
    assert algorithm_from("aimd", {"backoff_ratio": 0.5}) == AIMD(backoff_ratio=0.5)
    assert algorithm_from("gradient2") == Gradient2()
    assert algorithm_from("vegas").name == "vegas"
