"""Invariants of the sans-I/O breaker state machine for any sequence of events (hypothesis, fake time)."""

from __future__ import annotations

from hypothesis import given
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


LEGAL = {
    (CLOSED, OPEN),
    (OPEN, HALF_OPEN),
    (HALF_OPEN, OPEN),
    (HALF_OPEN, CLOSED),
    (OPEN, CLOSED),
    (HALF_OPEN, HALF_OPEN),
}
steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "finish", "tick", "force_open", "reset", "health"]),
        st.sampled_from([SUCCESS, FAILURE, SLOW, IGNORED]),
        st.floats(0, 20),
    ),
    max_size=80,
)


@given(steps=steps, probes=st.integers(1, 4), windowed=st.booleans(), check=st.booleans())
def test_transitions_stay_legal_and_probes_bounded(steps, probes: int, windowed: bool, check: bool) -> None:
    """Only legal transitions happen, and half-open never has more than N probes in flight."""
    core = BreakerCore(
        failure_threshold=3,
        failure_rate_threshold=0.5 if windowed else None,
        window=CountWindow(10) if windowed else None,
        minimum_calls=4,
        recovery_s=5.0,
        half_open_max_calls=probes,
        has_health_check=check,
    )
    now = 0.0
    in_flight: list[int] = []
    probes_in_flight = 0
    for action, outcome, dt in steps:
        if action == "tick":
            now += dt
        elif action == "admit":
            ticket = core.admit(now)
            if ticket != REJECTED:
                in_flight.append(ticket)
        elif action == "finish" and in_flight:
            if core.record(in_flight.pop(0), outcome, now):
                core.health_checked(core.generation, healthy=outcome is SUCCESS, now=now)
        elif action == "force_open":
            core.force_open(now)
        elif action == "reset":
            core.reset(now)
        if core.state is HALF_OPEN:
            probes_in_flight = sum(1 for t in in_flight if t == core.generation)
            assert probes_in_flight <= probes
        assert core.state in (CLOSED, OPEN, HALF_OPEN)
    for old, new, _ in core.changes:
        assert (old, new) in LEGAL


@given(outcomes=st.lists(st.booleans(), max_size=60), size=st.integers(1, 10))
def test_count_window_matches_last_n(outcomes: list[bool], size: int) -> None:
    """The count window's totals equal those of the last *size* outcomes."""
    window = CountWindow(size)
    for failed in outcomes:
        window.add(failed, 0.0)
    tail = outcomes[-size:]
    assert window.counts(0.0) == (len(tail), sum(tail))


@given(events=st.lists(st.tuples(st.floats(0, 3), st.booleans()), max_size=60))
def test_time_window_forgets_beyond_its_span(events: list[tuple[float, bool]]) -> None:
    """The time window never counts an outcome older than its span plus one bucket."""
    window = TimeWindow(10.0, buckets=10)
    now = 0.0
    seen: list[tuple[float, bool]] = []
    for dt, failed in events:
        now += dt
        window.add(failed, now)
        seen.append((now, failed))
    calls, failures = window.counts(now)
    recent = [f for t, f in seen if t > now - 11.0]
    strict = [f for t, f in seen if t > now - 9.0]
    assert len(strict) <= calls <= len(recent)
    assert failures <= sum(recent)
