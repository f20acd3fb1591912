"""The breaker core against a reference model written from the spec, step by step, on exact values.

The model keeps whole histories (every outcome with its time) where the core keeps
counters and rings, so an arithmetic slip in either shows up as a different admission,
state, transition reason, wait or health-check request.
"""

from __future__ import annotations

import random

from dataclasses import dataclass, field

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from commtel.breaker._core import (
    CLOSED,
    FAILURE,
    HALF_OPEN,
    IGNORED,
    OPEN,
    REJECTED,
    SLOW,
    SUCCESS,
    BreakerCore,
    CountWindow,
    TimeWindow,
)


@dataclass
class Model:
    """The breaker as its documentation states it, with histories instead of counters."""

    failure_threshold: int | None
    rate: float | None
    window: tuple[str, float] | None  # ("count", size) or ("time", seconds); 10 buckets
    minimum_calls: int
    recovery_s: float
    probes_allowed: int
    health_check: bool
    state: str = CLOSED
    generation: int = 0
    opened_at: float = 0.0
    forced: bool = False
    checking: bool = False
    closed_outcomes: list[tuple[float, bool]] = field(default_factory=list)  # since the breaker last closed
    probes_out: int = 0
    probes_ok: int = 0
    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def move(self, to: str, reason: str, now: float) -> None:
        self.changes.append((self.state, to, reason))
        self.state = to
        self.generation += 1
        self.checking = False
        self.probes_out = self.probes_ok = 0
        if to == OPEN:
            self.opened_at = now
        if to == CLOSED:
            self.closed_outcomes = []

    def consecutive(self) -> int:
        n = 0
        for _, failed in reversed(self.closed_outcomes):
            if not failed:
                break
            n += 1
        return n

    def window_counts(self, now: float) -> tuple[int, int]:
        assert self.window is not None
        kind, size = self.window
        if kind == "count":
            tail = self.closed_outcomes[-int(size) :]
        else:
            width = size / 10
            current = int(now / width)
            tail = [(t, f) for t, f in self.closed_outcomes if int(t / width) > current - 10]
        return len(tail), sum(f for _, f in tail)

    def admit(self, now: float) -> int:
        if self.state == CLOSED:
            return self.generation
        if self.state == OPEN:
            if self.forced or now - self.opened_at < self.recovery_s:
                return REJECTED
            self.move(HALF_OPEN, "recovery timeout elapsed", now)
        if self.checking or self.probes_out >= self.probes_allowed:
            return REJECTED
        self.probes_out += 1
        return self.generation

    def record(self, ticket: int, outcome: str, now: float) -> bool:
        if ticket != self.generation:
            return False
        if self.state == CLOSED:
            if outcome == IGNORED:
                return False
            failed = outcome in (FAILURE, SLOW)
            self.closed_outcomes.append((now, failed))
            if failed:
                if self.failure_threshold is not None and self.consecutive() >= self.failure_threshold:
                    self.move(OPEN, f"{self.consecutive()} consecutive failures", now)
                elif self.window is not None and self.rate is not None:
                    calls, failures = self.window_counts(now)
                    if calls >= self.minimum_calls and failures >= self.rate * calls:
                        self.move(OPEN, f"failure rate {failures}/{calls}", now)
            return False
        if self.state != HALF_OPEN:
            return False
        if outcome == IGNORED:
            self.probes_out -= 1
            return False
        if outcome != SUCCESS:
            self.move(OPEN, "probe failed", now)
            return False
        self.probes_ok += 1
        if self.probes_ok < self.probes_allowed:
            return False
        if self.health_check:
            self.checking = True
            return True
        self.move(CLOSED, "probes succeeded", now)
        return False

    def health_checked(self, ticket: int, healthy: bool, now: float) -> None:
        if ticket == self.generation and self.state == HALF_OPEN and self.checking:
            if healthy:
                self.move(CLOSED, "health check passed", now)
            else:
                self.move(OPEN, "health check failed", now)

    def force_open(self, now: float) -> None:
        if self.state != OPEN:
            self.move(OPEN, "forced open", now)
        self.forced = True

    def reset(self, now: float) -> None:
        self.forced = False
        if self.state != CLOSED:
            self.move(CLOSED, "reset", now)
        self.closed_outcomes = []

    def retry_after(self, now: float) -> float:
        if self.state == OPEN:
            return self.recovery_s if self.forced else max(0.0, self.opened_at + self.recovery_s - now)
        return min(self.recovery_s, 1.0)


def _core_for(model: Model) -> BreakerCore:
    window: CountWindow | TimeWindow | None = None
    if model.window is not None:
        kind, size = model.window
        window = CountWindow(int(size)) if kind == "count" else TimeWindow(size, buckets=10)
    return BreakerCore(
        failure_threshold=model.failure_threshold,
        failure_rate_threshold=model.rate,
        window=window,
        minimum_calls=model.minimum_calls,
        recovery_s=model.recovery_s,
        half_open_max_calls=model.probes_allowed,
        has_health_check=model.health_check,
    )


configs = st.builds(
    Model,
    failure_threshold=st.one_of(st.none(), st.integers(1, 4)),
    rate=st.one_of(st.none(), st.sampled_from([0.25, 0.5, 0.6, 1.0])),
    window=st.one_of(
        st.none(),
        st.tuples(st.just("count"), st.integers(1, 6).map(float)),
        st.tuples(st.just("time"), st.sampled_from([1.0, 2.5, 10.0])),
    ),
    minimum_calls=st.integers(1, 5),
    recovery_s=st.sampled_from([0.5, 1.0, 3.0]),
    probes_allowed=st.integers(1, 3),
    health_check=st.booleans(),
)
ACTIONS = ("admit", "admit", "admit", "finish_newest", "finish_newest", "finish_oldest", "finish_stale")
ACTIONS += ("tick", "tick", "force", "reset", "check")
OUTCOMES = (SUCCESS, SUCCESS, SUCCESS, FAILURE, FAILURE, SLOW, IGNORED)
TICKS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


@settings(max_examples=200, deadline=None)
@given(model=configs, rnd=st.randoms(use_true_random=False))
def test_core_matches_the_model(model: Model, rnd: random.Random) -> None:
    """Same admissions, states, generations, transitions (with reasons), waits and health-check requests."""
    core = _core_for(model)
    now = 0.0
    tickets: list[int] = []
    for _ in range(150):
        action, outcome = rnd.choice(ACTIONS), rnd.choice(OUTCOMES)
        if action == "tick":
            now += rnd.choice(TICKS)
        elif action == "admit":
            got, want = core.admit(now), model.admit(now)
            assert got == want
            if got != REJECTED:
                tickets.append(got)
        elif action in {"finish_newest", "finish_oldest"} and tickets:
            ticket = tickets.pop(-1 if action == "finish_newest" else 0)
            assert core.record(ticket, outcome, now) == model.record(ticket, outcome, now)
        elif action == "finish_stale":
            stale = core.generation - 1
            assert core.record(stale, outcome, now) == model.record(stale, outcome, now) is False
        elif action == "force" and rnd.random() < 0.2:
            core.force_open(now)
            model.force_open(now)
        elif action == "reset" and rnd.random() < 0.3:
            core.reset(now)
            model.reset(now)
        elif action == "check":
            healthy = rnd.random() < 0.5
            core.health_checked(core.generation, healthy=healthy, now=now)
            model.health_checked(model.generation, healthy, now)
        assert (core.state, core.generation, core.forced, core.checking) == (
            model.state,
            model.generation,
            model.forced,
            model.checking,
        )
        assert core.changes == model.changes
        assert core.retry_after(now) == model.retry_after(now)


def _core(**overrides: object) -> BreakerCore:
    options: dict[str, object] = {
        "failure_threshold": 3,
        "failure_rate_threshold": None,
        "window": None,
        "minimum_calls": 1,
        "recovery_s": 10.0,
        "half_open_max_calls": 2,
        "has_health_check": False,
    }
    options.update(overrides)
    return BreakerCore(**options)  # type: ignore[arg-type]


def test_a_fresh_core_is_closed_at_generation_zero() -> None:
    """A new breaker admits with ticket 0 and has no transitions."""
    core = _core()
    assert (core.state, core.generation, core.forced, core.checking, core.changes) == (CLOSED, 0, False, False, [])
    assert core.admit(0.0) == 0


def test_a_slow_call_admitted_while_closed_cannot_close_a_breaker_that_opened_since() -> None:
    """Fencing: outcomes of tickets from before the last transition are ignored."""
    core = _core(failure_threshold=1, half_open_max_calls=1)
    slow = core.admit(0.0)
    failing = core.admit(0.0)
    core.record(failing, FAILURE, 0.1)
    assert core.state is OPEN
    assert core.admit(20.0) == core.generation  # half-open probe
    assert core.state is HALF_OPEN
    core.record(slow, SUCCESS, 20.1)  # the old success must not count as the probe's
    assert core.state is HALF_OPEN
    assert core.admit(20.1) is REJECTED  # the one probe is still out


def test_half_open_closes_only_after_every_probe_succeeded() -> None:
    """With N probes, N-1 successes keep it half-open; the Nth closes it."""
    core = _core(failure_threshold=1, half_open_max_calls=3)
    core.record(core.admit(0.0), FAILURE, 0.0)
    probes = [core.admit(10.0) for _ in range(3)]
    assert REJECTED not in probes
    assert core.admit(10.0) is REJECTED
    for probe in probes[:2]:
        core.record(probe, SUCCESS, 10.5)
        assert core.state is HALF_OPEN
    core.record(probes[2], SUCCESS, 10.5)
    assert core.state is CLOSED
    assert core.changes[-1] == (HALF_OPEN, CLOSED, "probes succeeded")


def test_an_ignored_probe_frees_its_slot() -> None:
    """A probe whose outcome is ignored gives its admission back (one slot, not two)."""
    core = _core(failure_threshold=1, half_open_max_calls=1)
    core.record(core.admit(0.0), FAILURE, 0.0)
    probe = core.admit(10.0)
    core.record(probe, IGNORED, 10.0)
    assert core.admit(10.0) == probe
    assert core.admit(10.0) is REJECTED


def test_consecutive_failures_count_from_zero_after_recovery() -> None:
    """After closing again the breaker needs the full threshold of new failures to trip."""
    core = _core(failure_threshold=3, half_open_max_calls=1)
    for _ in range(3):
        core.record(core.admit(0.0), FAILURE, 0.0)
    assert core.changes == [(CLOSED, OPEN, "3 consecutive failures")]
    core.record(core.admit(10.0), SUCCESS, 10.0)
    assert core.state is CLOSED
    for _ in range(2):
        core.record(core.admit(11.0), FAILURE, 11.0)
    assert core.state is CLOSED
    core.record(core.admit(11.0), FAILURE, 11.0)
    assert core.state is OPEN


def test_a_success_resets_the_consecutive_count() -> None:
    """Failure, failure, success, failure, failure does not trip a threshold of 3."""
    core = _core(failure_threshold=3)
    for outcome in (FAILURE, FAILURE, SUCCESS, FAILURE, FAILURE):
        core.record(core.admit(0.0), outcome, 0.0)
    assert core.state is CLOSED
    assert core.consecutive == 2


def test_failure_rate_trips_at_the_exact_threshold_once_minimum_calls_are_in() -> None:
    """50% of 4 calls trips; 1 of 3 does not, and too few calls never trip."""
    core = _core(failure_threshold=None, failure_rate_threshold=0.5, window=CountWindow(4), minimum_calls=4)
    for outcome in (FAILURE, SUCCESS, SUCCESS):
        core.record(core.admit(0.0), outcome, 0.0)
    assert core.state is CLOSED
    core.record(core.admit(0.0), FAILURE, 0.0)
    assert core.changes == [(CLOSED, OPEN, "failure rate 2/4")]


def test_retry_after_counts_down_and_never_goes_negative() -> None:
    """Open: the rest of the recovery time; forced open: the full recovery time; probing: capped at 1 s."""
    core = _core(failure_threshold=1, recovery_s=5.0)
    core.record(core.admit(2.0), FAILURE, 2.0)
    assert core.retry_after(3.0) == 4.0
    assert core.retry_after(9.0) == 0.0
    core.admit(7.0)
    assert core.state is HALF_OPEN
    assert core.retry_after(7.0) == 1.0
    core.force_open(8.0)
    assert core.retry_after(100.0) == 5.0
    assert _core(recovery_s=0.5).retry_after(0.0) == 0.5


def test_health_check_decides_after_the_probes() -> None:
    """With a health check, the last probe success asks for it; its answer closes or opens."""
    for healthy, state, reason in ((True, CLOSED, "health check passed"), (False, OPEN, "health check failed")):
        core = _core(failure_threshold=1, half_open_max_calls=1, has_health_check=True)
        core.record(core.admit(0.0), FAILURE, 0.0)
        probe = core.admit(10.0)
        assert core.record(probe, SUCCESS, 10.0) is True
        assert core.checking is True
        assert core.admit(10.0) is REJECTED  # no probes while checking
        core.health_checked(probe - 1, healthy=healthy, now=10.0)  # a stale answer changes nothing
        assert core.state is HALF_OPEN
        core.health_checked(probe, healthy=healthy, now=10.0)
        assert (core.state, core.changes[-1][2]) == (state, reason)
        assert core.checking is False


def test_health_check_answer_outside_half_open_is_ignored() -> None:
    """An answer that arrives after a reset or while closed changes nothing."""
    core = _core(has_health_check=True)
    core.health_checked(core.generation, healthy=False, now=0.0)
    assert core.state is CLOSED
    assert core.changes == []


def test_forced_open_stays_open_past_recovery_until_reset() -> None:
    """force_open ignores the recovery timeout; reset closes and forgets failures."""
    core = _core(failure_threshold=2)
    core.record(core.admit(0.0), FAILURE, 0.0)
    core.force_open(0.0)
    core.force_open(1.0)  # already open: no second transition
    assert core.admit(1000.0) is REJECTED
    core.reset(1000.0)
    assert core.changes == [(CLOSED, OPEN, "forced open"), (OPEN, CLOSED, "reset")]
    core.record(core.admit(1000.0), FAILURE, 1000.0)
    assert core.state is CLOSED  # the failure before force_open was forgotten
    core.reset(1001.0)  # closed: no transition, but the count is cleared
    assert core.consecutive == 0
    assert len(core.changes) == 2


def test_reset_clears_the_failure_window() -> None:
    """Failures before a reset do not count toward the rate afterwards."""
    for window in (CountWindow(4), TimeWindow(10.0, buckets=10)):
        core = _core(failure_threshold=None, failure_rate_threshold=0.5, window=window, minimum_calls=2)
        core.record(core.admit(0.0), FAILURE, 0.0)
        core.reset(0.0)
        core.record(core.admit(0.0), SUCCESS, 0.0)
        core.record(core.admit(0.0), FAILURE, 0.0)
        assert core.changes == [(CLOSED, OPEN, "failure rate 1/2")]


def test_open_records_only_the_time_it_opened() -> None:
    """The recovery timeout runs from the moment of the trip, not from the breaker's creation."""
    core = _core(failure_threshold=1, recovery_s=10.0)
    core.record(core.admit(5.0), FAILURE, 5.0)
    assert core.opened_at == 5.0
    assert core.admit(14.9) is REJECTED
    assert core.admit(15.0) != REJECTED


@pytest.mark.parametrize("size", [1, 3, 5])
def test_count_window_slides_by_one(size: int) -> None:
    """Each new outcome evicts exactly the oldest one once the window is full."""
    window = CountWindow(size)
    outcomes = [True, False, True, True, False, False, True, False]
    for i, failed in enumerate(outcomes, 1):
        window.add(failed, 0.0)
        tail = outcomes[:i][-size:]
        assert window.counts(0.0) == (len(tail), sum(tail))


def test_time_window_buckets_and_boundaries() -> None:
    """Outcomes count until their bucket leaves the window: 10 s in 1 s buckets."""
    window = TimeWindow(10.0, buckets=10)
    window.add(True, 0.5)  # bucket 0
    window.add(False, 0.9)  # bucket 0
    assert window.counts(0.9) == (2, 1)
    window.add(True, 3.0)  # bucket 3
    assert window.counts(9.99) == (3, 2)
    assert window.counts(10.0) == (1, 1)  # bucket 0 left: the window is buckets 1..10
    assert window.counts(13.0) == (0, 0)
    window.add(False, 12.0)  # bucket 12 reuses slot 2
    window.add(True, 13.5)  # bucket 13 reuses bucket 3's slot: the old entry is gone
    assert window.counts(13.5) == (2, 1)
    window.clear()
    assert window.counts(13.5) == (0, 0)
    window.add(True, 13.5)
    assert window.counts(13.5) == (1, 1)


def test_time_window_default_is_ten_buckets() -> None:
    """Without *buckets*, a 10 s window forgets in 1 s steps."""
    window = TimeWindow(10.0)
    window.add(True, 0.95)
    assert window.counts(9.99) == (1, 1)
    assert window.counts(10.0) == (0, 0)


def test_time_window_with_fractional_buckets() -> None:
    """A 2 s window in 0.5 s buckets: an outcome counts for 1.5 to 2 s, then leaves."""
    window = TimeWindow(2.0, buckets=4)
    window.add(True, 0.6)  # bucket 1: [0.5, 1.0)
    window.add(False, 1.2)  # bucket 2
    assert window.counts(1.2) == (2, 1)
    assert window.counts(2.4) == (2, 1)
    assert window.counts(2.5) == (1, 0)  # bucket 1 left
    assert window.counts(3.0) == (0, 0)
