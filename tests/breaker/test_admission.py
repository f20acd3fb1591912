"""The composite-guard steps of a breaker: admit, record, release; and side-effect-free option checks."""

from __future__ import annotations

import asyncio

import pytest

from prometheus_client import CollectorRegistry

import commtel
import commtel.events

from commtel import CircuitBreaker, CircuitOpenError, ConfigurationError
from tests.harness.clock import FakeClock


def _half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    breaker.record(breaker.admit(), ConnectionError("down"))
    assert breaker.state == "open"
    clock.advance(10)


def test_release_frees_the_probe_slot_and_counts_nothing(clock: FakeClock, registry: CollectorRegistry) -> None:
    """A released half-open admission lets the next call probe, and records no call outcome."""
    breaker = CircuitBreaker("release", failure_threshold=1, recovery_timeout=5)
    _half_open(breaker, clock)
    probe = breaker.admit()
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    breaker.release(probe)
    breaker.record(breaker.admit(), None, "ok")
    assert breaker.state == "closed"
    calls = {
        result: registry.get_sample_value("commtel_circuit_calls_total", {"breaker": "release", "result": result})
        for result in ("success", "failure")
    }
    assert calls == {"success": 1.0, "failure": 1.0}


def test_arelease_frees_the_probe_slot(clock: FakeClock) -> None:
    """The async release gives the half-open probe slot back too."""
    breaker = CircuitBreaker("arelease", failure_threshold=1, recovery_timeout=5)
    _half_open(breaker, clock)

    async def main() -> None:
        await breaker.arelease(await breaker.aadmit())
        await breaker.arecord(await breaker.aadmit(), None, "ok")

    asyncio.run(main())
    assert breaker.state == "closed"


def test_closed_success_after_failure_resets_the_count(clock: FakeClock) -> None:
    """record() of a success still resets the consecutive-failure count (the lock-free path is skipped)."""
    breaker = CircuitBreaker("reset-count", failure_threshold=2)
    breaker.record(breaker.admit(), ConnectionError("down"))
    breaker.record(breaker.admit(), None, "ok")
    breaker.record(breaker.admit(), ConnectionError("down"))
    assert breaker.state == "closed"


def test_check_options_has_no_side_effects() -> None:
    """check_options validates like the constructor but emits no event (no 'created' breaker)."""
    seen: list[object] = []
    commtel.events.set_listeners([seen.append])
    try:
        CircuitBreaker.check_options(failure_threshold=3, recovery_timeout=1.5, window_type="time")
        with pytest.raises(ConfigurationError, match="failure_rate_threshold"):
            CircuitBreaker.check_options(failure_rate_threshold=2.0)
        with pytest.raises(ConfigurationError, match="window_type"):
            CircuitBreaker.check_options(window_type="sliding")
        with pytest.raises(TypeError):
            CircuitBreaker.check_options(failure_treshold=3)
        assert seen == []
        CircuitBreaker("built", failure_threshold=3)
        assert [type(event).__name__ for event in seen] == ["CircuitBreakerCreated", "CircuitStateChanged"]
    finally:
        commtel.events.set_listeners(None)
