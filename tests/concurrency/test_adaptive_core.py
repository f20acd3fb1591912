"""The sans-I/O adaptive core: windows, the baseline, app-limited traffic, clamping and probes (virtual time)."""

from __future__ import annotations

import pytest

from commtel.concurrency import AIMD, Gradient2
from commtel.concurrency._adaptive_core import AdaptiveCore


def _core(**options: object) -> AdaptiveCore:
    settings: dict[str, object] = {
        "initial_limit": 16,
        "min_limit": 2,
        "max_limit": 40,
        "window_s": 0.1,
        "min_samples": 4,
        "probe_interval_s": 30.0,
        "probe_fraction": 0.5,
        "probe_jitter": 0.25,
        "random": lambda: 0.0,
    }
    settings.update(options)
    algorithm = settings.pop("algorithm", Gradient2())
    return AdaptiveCore(algorithm, **settings)  # type: ignore[arg-type]


def _window(
    core: AdaptiveCore, now: float, rtt: float, *, n: int = 4, in_flight: int = 16, dropped: bool = False
) -> bool:
    """n calls finishing at now .. now + 0.1 (a full window); the last one's answer."""
    changed = False
    for i in range(n):
        changed = core.sample(core.admit(), now + i * 0.1 / (n - 1), rtt, dropped=dropped, in_flight=in_flight)
    return changed


def test_a_window_needs_min_samples_and_its_length() -> None:
    """A window closes once min_samples calls finished and window_s passed since the last one closed."""
    core = _core()
    for i in range(3):
        assert not core.sample(0, 1.0 + i, 0.05, dropped=False, in_flight=16)
    assert core.sample(0, 4.0, 0.05, dropped=False, in_flight=16)  # the 4th sample closes the first window
    for _ in range(10):
        assert not core.sample(0, 4.05, 0.05, dropped=False, in_flight=16)  # many samples, too little time
    assert core.sample(0, 4.11, 0.05, dropped=False, in_flight=16)


def test_first_window_sets_the_baseline_and_the_limit_grows_while_latency_holds() -> None:
    """Unloaded latency: baseline measured, limit up by sqrt(limit)/2 per window; changes recorded."""
    core = _core()
    assert _window(core, 1.0, 0.05)
    assert core.baseline == 0.05
    assert core.limit == 18
    assert core.changes == [(16, 18, "latency", 0.05, 0.05)]
    assert _window(core, 1.2, 0.05)
    assert core.limit == 20


def test_rising_latency_shrinks_the_limit_and_lower_latency_lowers_the_baseline() -> None:
    """Latency above the baseline shrinks; a faster window becomes the new baseline."""
    core = _core()
    _window(core, 1.0, 0.05)
    _window(core, 1.2, 0.10)
    assert core.limit < 18
    _window(core, 1.4, 0.04)
    assert core.baseline == 0.04


def test_limit_is_not_grown_past_what_the_traffic_uses() -> None:
    """Fewer than half the limit in flight: no growth (it would prove nothing); shrinking still works."""
    core = _core()
    _window(core, 1.0, 0.05, in_flight=7)
    assert core.limit == 16
    _window(core, 1.2, 0.10, in_flight=7)
    assert core.limit < 16


def test_limit_stays_within_min_and_max() -> None:
    """The algorithm's answer is clamped to [min_limit, max_limit]."""
    core = _core(algorithm=AIMD(increase=100))
    _window(core, 1.0, 0.05)
    assert core.limit == 40
    core = _core(algorithm=AIMD(backoff_ratio=0.5))
    for i in range(10):
        _window(core, 1.0 + i * 0.2, 0.05, dropped=True)
    assert core.limit == 2


def test_calls_without_latency_count_only_as_drops() -> None:
    """rtt None (a fast 503) feeds AIMD's drop signal but not the latency mean."""
    core = _core(algorithm=AIMD())
    for i in range(4):
        core.sample(0, 1.0 + i * 0.04, None, dropped=True, in_flight=16)
    assert core.limit == int(16 * 0.9)
    assert core.baseline == 0.0


def test_probe_lowers_the_limit_measures_and_restores() -> None:
    """Due probe: limit halves, the first calls admitted are measured to their end, baseline replaced."""
    core = _core()
    _window(core, 1.0, 0.05)  # baseline 0.05 at t=1.1; first probe 0.5 s later (jitter 0)
    assert core.next_probe_at == pytest.approx(1.6)
    assert core.tick(1.6)
    assert core.probing and core.limit == 9  # ceil(18 * 0.5)
    old_epoch = core.epoch - 1
    assert not core.sample(old_epoch, 1.61, 0.5, dropped=False, in_flight=18)  # admitted before: ignored
    epochs = [core.admit() for _ in range(5)]
    assert len(set(epochs[:4])) == 1 and epochs[4] != epochs[0]  # only the first min_samples are measured
    for i, latency in enumerate((0.06, 0.07, 0.08)):
        assert not core.sample(epochs[0], 1.7 + i * 0.01, latency, dropped=False, in_flight=9)
    assert not core.sample(epochs[4], 1.8, 0.01, dropped=False, in_flight=9)  # not one of the measured calls
    assert core.sample(epochs[0], 1.9, 0.07, dropped=False, in_flight=9)
    assert not core.probing
    assert core.baseline == pytest.approx(0.07)  # the slower dependency is accepted as the new normal
    assert core.limit == 18
    assert [c[2] for c in core.changes[-2:]] == ["probe", "probe_done"]
    assert core.next_probe_at == pytest.approx(1.9 + 1.0)  # the next one twice as late


def test_probe_schedule_doubles_up_to_the_interval_with_jitter() -> None:
    """Probes come 0.5, 1, 2, 4 … s after each other, capped at probe_interval_s and shortened by up to 25 % jitter."""
    core = _core(probe_interval_s=3.0, random=lambda: 1.0)
    _window(core, 0.0, 0.05)
    gaps = []
    now = 0.1
    for _ in range(4):
        gaps.append(round(core.next_probe_at - now, 3))
        now = core.next_probe_at
        core.tick(now)
        for _ in range(4):
            epoch = core.admit()
        for _ in range(4):
            core.sample(epoch, now + 0.05, 0.05, dropped=False, in_flight=4)
        now += 0.05
    assert gaps == [0.375, 0.75, 1.5, 2.25]


def test_probe_without_traffic_ends_by_itself() -> None:
    """A probe whose calls never finish ends after max(1 s, 10 windows) and restores the limit."""
    core = _core()
    _window(core, 1.0, 0.05)
    core.tick(1.6)
    assert not core.tick(2.5)
    assert core.tick(2.7)
    assert not core.probing and core.limit == 18


def test_a_probe_measures_five_calls_at_most() -> None:
    """With min_samples 10 a probe still measures only the first 5 calls admitted (it costs ~2 latencies)."""
    core = _core(min_samples=10)
    for i in range(10):
        core.sample(0, 1.0 + i * 0.02, 0.05, dropped=False, in_flight=16)
    started = core.next_probe_at
    core.tick(started)
    epochs = [core.admit() for _ in range(6)]
    assert epochs[:5] == [epochs[0]] * 5 and epochs[5] != epochs[0]
    for _ in range(4):
        assert not core.sample(epochs[0], started + 0.1, 0.06, dropped=False, in_flight=8)
    assert core.sample(epochs[0], started + 0.1, 0.06, dropped=False, in_flight=8)
    assert not core.probing and core.baseline == pytest.approx(0.06)
