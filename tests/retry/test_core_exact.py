"""The retry core on exact values: backoff per jitter mode, decisions, stops, statistics and events."""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any

import pytest

import commtel.events

from commtel import RateLimitExceeded, RetryConfig, RetryExhausted
from commtel.errors import RateLimitedByServer, RetryBudgetExhausted
from commtel.events import Event, RetryCallFinished, RetryDenied, RetryGaveUp, RetryScheduled
from commtel.retries import RetryBudget
from commtel.retries._classify import Classifier, retry_after_s, status_of
from commtel.retries._core import RetryCore, compute_backoff
from tests.harness.clock import FakeClock


def _draw(value: float) -> Any:
    return lambda: value


@pytest.mark.parametrize(("retry", "expected"), [(1, 0.5), (2, 1.5), (3, 4.5), (4, 10.0), (60, 10.0)])
def test_no_jitter_grows_by_the_factor_up_to_the_cap(retry: int, expected: float) -> None:
    """base 0.5 s, factor 3, cap 10 s: 0.5, 1.5, 4.5, then the cap."""
    config = RetryConfig(base_delay=0.5, backoff_factor=3, max_delay=10, jitter=False)
    assert compute_backoff(config, retry, 0.0) == expected


def test_an_overflowing_power_gives_the_cap() -> None:
    """factor ** retry beyond float range is the cap, not an error."""
    config = RetryConfig(base_delay=1, backoff_factor=10, max_delay=7, jitter="none")
    assert compute_backoff(config, 5000, 0.0) == 7


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        ("full", 0.25, 1.0),  # d * r
        ("full", 1.0, 4.0),
        ("equal", 0.0, 2.0),  # d/2 + d/2 * r
        ("equal", 0.5, 3.0),
        ("equal", 1.0, 4.0),
        ("proportional", 0.0, 3.0),  # d - f*d + 2*f*d*r, f = 0.25
        ("proportional", 0.5, 4.0),
        ("proportional", 1.0, 5.0),
    ],
)
def test_jitter_modes_on_a_given_draw(jitter: str, draw: float, expected: float) -> None:
    """Third retry: d = 1 * 2**2 = 4 s before jitter."""
    config = RetryConfig(base_delay=1, backoff_factor=2, max_delay=30, jitter=jitter, jitter_factor=0.25)  # type: ignore[arg-type]
    assert compute_backoff(config, 3, 0.0, _draw(draw)) == expected


def test_proportional_jitter_is_clamped_to_the_cap() -> None:
    """The upper spread never passes max_delay."""
    config = RetryConfig(base_delay=8, max_delay=9, jitter=True, jitter_factor=0.5)
    assert compute_backoff(config, 1, 0.0, _draw(1.0)) == 9
    assert compute_backoff(config, 1, 0.0, _draw(0.0)) == 4


def test_jitter_true_is_proportional_and_false_is_none() -> None:
    """The jitter booleans map to the named modes."""
    assert RetryConfig(jitter=True).jitter_mode == "proportional"
    assert RetryConfig(jitter=False).jitter_mode == "none"
    assert RetryConfig().jitter_mode == "proportional"


@pytest.mark.parametrize(("previous", "draw", "expected"), [(4.0, 0.5, 6.5), (4.0, 1.0, 12.0), (0.1, 0.7, 1.0)])
def test_decorrelated_jitter_draws_between_base_and_three_times_the_previous(
    previous: float, draw: float, expected: float
) -> None:
    """base + (max(base, 3*previous) - base) * r, capped."""
    config = RetryConfig(base_delay=1, max_delay=30, jitter="decorrelated")
    assert compute_backoff(config, 7, previous, _draw(draw)) == expected
    assert compute_backoff(RetryConfig(base_delay=1, max_delay=5, jitter="decorrelated"), 2, 100.0, _draw(1.0)) == 5


@dataclass
class Seen:
    """The decisions a call emits (creation events, which only zero the metrics, are left out)."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, (RetryScheduled, RetryGaveUp, RetryCallFinished, RetryDenied)):
            self.events.append(event)


@pytest.fixture
def seen() -> Seen:
    listener = Seen()
    commtel.events.set_listeners([listener])
    return listener


def _core(**options: Any) -> RetryCore:
    budget = options.pop("budget", None)
    return RetryCore(RetryConfig(**options), operation="op", platform="p", budget=budget)


def test_retries_until_max_attempts_then_stops(seen: Seen) -> None:
    """max_attempts=3: two delays, then None; exact delays, stats and events."""
    core = _core(max_attempts=3, base_delay=1, backoff_factor=2, jitter=False)
    call = core.begin(0.0)
    assert call.on_error(ConnectionError("down"), 0.0) == 1.0
    assert call.on_error(ConnectionError("down"), 1.0) == 2.0
    assert call.on_error(ConnectionError("down"), 3.0) is None
    assert (core.stats.retries, core.stats.backoff_s, core.stats.exhausted) == (2, 3.0, 1)
    assert seen.events == [
        RetryScheduled("op", "p", 1, 1.0, "ConnectionError"),
        RetryScheduled("op", "p", 2, 2.0, "ConnectionError"),
        RetryGaveUp("op", "p", 3, "ConnectionError", "attempts"),
        RetryCallFinished("op", "p", "exhausted"),
    ]


def test_max_attempts_one_never_retries(seen: Seen) -> None:
    """One attempt in total: the first failure is final."""
    core = _core(max_attempts=1)
    assert core.begin(0.0).on_error(TimeoutError(), 0.0) is None
    assert seen.events[0] == RetryGaveUp("op", "p", 1, "TimeoutError", "attempts")


def test_a_not_retryable_error_stops_at_once(seen: Seen) -> None:
    """ValueError is not retried by default: no delay, counted as not_retryable."""
    core = _core()
    assert core.begin(0.0).on_error(ValueError("bad"), 0.0) is None
    assert (core.stats.not_retryable, core.stats.retries, core.stats.exhausted) == (1, 0, 0)
    assert seen.events == [RetryCallFinished("op", "p", "not_retryable")]


def test_success_after_a_retry_is_counted(seen: Seen) -> None:
    """succeeded() after failures: after_retry, one success_after_retry event."""
    core = _core(base_delay=0, jitter=False)
    call = core.begin(0.0)
    call.on_error(ConnectionError(), 0.0)
    call.succeeded()
    assert (core.stats.after_retry, core.stats.first_try) == (1, 0)
    assert seen.events[-1] == RetryCallFinished("op", "p", "success_after_retry")


def test_first_try_success_is_counted(seen: Seen) -> None:
    """first_try(): counted once, one success_first_try event."""
    core = _core()
    core.first_try()
    core.first_try()
    assert core.stats.first_try == 2
    assert seen.events == [RetryCallFinished("op", "p", "success_first_try")] * 2


def test_the_previous_delay_carries_into_decorrelated_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each decorrelated delay is drawn from [base, 3 x the previous one]."""
    monkeypatch.setattr("commtel._timing.jitter", lambda: 1.0)
    core = _core(max_attempts=5, base_delay=1, max_delay=100, jitter="decorrelated")
    call = core.begin(0.0)
    delays = [call.on_error(ConnectionError(), 0.0) for _ in range(4)]
    assert delays == [1.0, 3.0, 9.0, 27.0]


class Throttled(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("throttled")
        self.retry_after_s = retry_after_s
        self.status_code = 503


def test_retry_after_is_honoured_and_capped() -> None:
    """The server's wait replaces the backoff, up to max_retry_after."""
    core = _core(max_attempts=4, base_delay=1, jitter=False, max_retry_after=5)
    call = core.begin(0.0)
    assert call.on_error(Throttled(2.5), 0.0) == 2.5
    assert call.on_error(Throttled(60), 0.0) == 5


def test_respect_retry_after_off_uses_the_backoff() -> None:
    """With respect_retry_after=False the server's hint is ignored."""
    core = _core(max_attempts=4, base_delay=1, jitter=False, respect_retry_after=False)
    call = core.begin(0.0)
    assert call.on_error(Throttled(30), 0.0) == 1.0
    assert call.on_error(Throttled(30), 0.0) == 2.0


def test_deadline_stops_the_retry_that_would_end_after_it(seen: Seen) -> None:
    """deadline 10 s from start 100: a 4 s wait at 106 is fine (=110), at 106.5 it is not."""
    core = _core(max_attempts=10, base_delay=4, backoff_factor=1, jitter=False, deadline=10)
    call = core.begin(100.0)
    assert call.on_error(ConnectionError(), 106.0) == 4.0
    assert call.on_error(ConnectionError(), 106.5) is None
    assert seen.events[-2] == RetryGaveUp("op", "p", 2, "ConnectionError", "deadline")


def test_rejected_results_raise_retry_exhausted_with_the_last_result_and_error() -> None:
    """on_result past max_attempts raises RetryExhausted(last_result) from the last exception."""
    core = _core(max_attempts=2, base_delay=0, jitter=False)
    call = core.begin(0.0)
    first = ConnectionError("first")
    assert call.on_error(first, 0.0) == 0.0
    with pytest.raises(RetryExhausted) as info:
        call.on_result("bad", "result", 0.0)
    assert (info.value.operation, info.value.attempts, info.value.last_result) == ("op", 2, "bad")
    assert info.value.__cause__ is first


def test_budget_denial_raises_and_is_counted(seen: Seen, clock: FakeClock) -> None:
    """With no retries left in the budget the call fails with RetryBudgetExhausted from the error."""
    budget = RetryBudget("b", ratio=0.0, min_retries=1, period=10)
    core = _core(max_attempts=5, base_delay=0, jitter=False, budget=budget)
    call = core.begin(clock.now)
    assert call.on_error(ConnectionError(), clock.now) == 0.0  # the one permit
    error = ConnectionError("again")
    with pytest.raises(RetryBudgetExhausted) as info:
        call.on_error(error, clock.now)
    assert info.value.__cause__ is error
    assert (core.stats.budget_denied, core.stats.exhausted, budget.denied) == (1, 1, 1)
    assert RetryDenied("op", "p", "b", "ConnectionError") in seen.events
    assert RetryGaveUp("op", "p", 2, "ConnectionError", "budget") in seen.events


def test_every_call_deposits_into_the_budget_first_tries_included(clock: FakeClock) -> None:
    """ratio 0.5, no minimum: two first-try calls earn exactly one retry."""
    budget = RetryBudget("b", ratio=0.5, min_retries=0, period=10)
    core = _core(max_attempts=5, base_delay=0, jitter=False, budget=budget)
    core.first_try()
    core.first_try()
    assert budget.snapshot(clock.now) == {"name": "b", "calls": 2, "retries": 0, "denied": 0}
    call = core.begin(clock.now)  # third call deposits too: 3 calls allow 1.5 retries
    assert call.on_error(ConnectionError(), clock.now) == 0.0
    assert call.on_error(ConnectionError(), clock.now) == 0.0
    with pytest.raises(RetryBudgetExhausted):
        call.on_error(ConnectionError(), clock.now)
    assert budget.snapshot(clock.now) == {"name": "b", "calls": 3, "retries": 2, "denied": 1}


def test_budget_window_slides() -> None:
    """Calls and retries older than the period stop counting, bucket by bucket."""
    budget = RetryBudget("b", ratio=1.0, min_retries=0, period=10, buckets=5)
    budget.record_call(0.5)
    budget.record_call(4.0)
    assert budget.try_acquire(4.0)
    assert budget.snapshot(9.9) == {"name": "b", "calls": 2, "retries": 1, "denied": 0}
    assert budget.snapshot(10.0) == {"name": "b", "calls": 1, "retries": 1, "denied": 0}  # the 0.5 s call left
    assert not budget.try_acquire(10.0)  # 1 retry < 0 + 1.0 * 1 call is false
    assert budget.snapshot(14.0) == {"name": "b", "calls": 0, "retries": 0, "denied": 1}
    assert budget.try_acquire(14.0) is False
    budget.record_call(14.0)
    assert budget.try_acquire(14.0) is True


def test_min_retries_are_allowed_without_calls() -> None:
    """A quiet service may still retry min_retries times per period."""
    budget = RetryBudget("b", ratio=0.0, min_retries=2)
    assert [budget.try_acquire(1.0) for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": 0}, r"RetryBudget.period must be a finite duration in seconds \(float or timedelta\) > 0"),
        ({"ratio": -0.1}, "RetryBudget.ratio must be a finite number >= 0"),
        ({"min_retries": -1}, "RetryBudget.min_retries must be a whole number >= 0"),
        ({"buckets": 0}, "RetryBudget.buckets must be a positive integer"),
    ],
)
def test_budget_rejects_bad_settings(options: dict[str, Any], message: str) -> None:
    """Invalid budgets fail at construction, naming the rule."""
    with pytest.raises(commtel.ConfigurationError, match=message):
        RetryBudget("b", **options)


class Response:
    def __init__(self, status_code: object, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}


class HTTPError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("http error")
        self.response = response


def test_classifier_reasons() -> None:
    """Reasons are 'rate_limited', the status as text, or the exception class name."""
    classify = Classifier(RetryConfig())
    assert classify.error(HTTPError(Response(429))) == "rate_limited"
    assert classify.error(HTTPError(Response(503))) == "503"
    assert classify.error(HTTPError(Response(404))) is None
    assert classify.error(TimeoutError()) == "TimeoutError"
    assert classify.error(ConnectionResetError()) == "ConnectionResetError"
    assert classify.error(RateLimitExceeded("x")) == "rate_limited"
    assert classify.error(KeyboardInterrupt()) is None  # type: ignore[arg-type]
    assert classify.result(Response(502)) == "502"
    assert classify.result(Response(200)) is None
    assert classify.result(Response("503")) is None  # not an int status
    assert classify.result("plain") is None


def test_classifier_switches() -> None:
    """Each family can be turned off; explicit types and messages turn retries on."""
    off = Classifier(
        RetryConfig(
            retry_on_timeout=False,
            retry_on_connection_error=False,
            retry_on_server_error=False,
            retry_on_rate_limit=False,
        )
    )
    assert off.error(TimeoutError()) is None
    assert off.error(ConnectionError()) is None
    assert off.error(HTTPError(Response(503))) is None
    assert off.error(RateLimitExceeded("x")) is None
    assert off.checks_results is False
    assert off.result(Response(503)) is None
    typed = Classifier(RetryConfig(on=(ValueError, RateLimitExceeded), retry_on_rate_limit=False))
    assert typed.error(ValueError()) == "ValueError"
    assert typed.error(RateLimitExceeded("x")) == "rate_limited"
    assert typed.error(KeyError()) is None
    predicate = Classifier(RetryConfig(on=lambda exc: "flaky" in str(exc), retry_on_server_error=False))
    assert predicate.error(OSError("flaky disk")) == "OSError"
    assert predicate.error(HTTPError(Response(503))) is None
    assert predicate.error(OSError("flaky", 1)) == "OSError"
    with_status = Classifier(RetryConfig(on=(HTTPError,)))
    assert with_status.error(HTTPError(Response(500))) == "500"
    assert with_status.error(HTTPError(Response(418))) == "HTTPError"
    messages = Classifier(RetryConfig(retry_on_specific_errors=("deadlock",)))
    assert messages.error(RuntimeError("a deadlock was found")) == "RuntimeError"
    assert messages.error(RuntimeError("other")) is None
    codes = Classifier(RetryConfig(retry_status_codes=[409], retry_on_server_error=False, retry_on_rate_limit=False))
    assert codes.checks_results is True
    assert codes.result(Response(409)) == "409"
    assert codes.result(Response(503)) is None
    results = Classifier(RetryConfig(retry_on_result=lambda v: v in ("again", Response(0).__class__)))
    assert results.result("again") == "result"
    assert results.result("done") is None
    empty = Classifier(
        RetryConfig(retry_on_result=lambda v: False, retry_on_server_error=False, retry_on_rate_limit=False)
    )
    assert empty.result(Response(503)) is None


def test_result_predicate_reports_the_status_when_there_is_one() -> None:
    """A rejected HTTP response is labelled by its status, other values by 'result'."""
    classify = Classifier(RetryConfig(retry_on_result=lambda v: True))
    assert classify.result(Response(503)) == "503"
    assert classify.result(Response(429)) == "rate_limited"
    assert classify.result(Response(200)) == "result"


def test_status_is_read_from_results_exceptions_and_their_responses() -> None:
    """status_of is duck-typed and only trusts integers."""
    assert status_of(Response(503)) == 503
    assert status_of(HTTPError(Response(502))) == 502
    assert status_of(Response(True)) is True or status_of(Response(True)) == 1  # bool is an int subclass
    assert status_of(Response("503")) is None
    assert status_of(object()) is None
    assert status_of(ValueError()) is None


def test_retry_after_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """retry_after(_s) attributes, Retry-After seconds and HTTP-date (against the wall clock)."""
    monkeypatch.setattr("commtel.retries._classify.wall", lambda: 1_000_000_000.0)
    assert retry_after_s(RateLimitedByServer("x", retry_after=7)) == 7.0
    assert retry_after_s(RateLimitExceeded("x", retry_after_s=3.5)) == 3.5
    assert retry_after_s(Throttled(2)) == 2.0
    assert retry_after_s(Response(429, {"Retry-After": " 12 "})) == 12.0
    assert retry_after_s(HTTPError(Response(429, {"Retry-After": "4"}))) == 4.0
    assert retry_after_s(Response(429, {"Retry-After": "Sun, 09 Sep 2001 01:46:50 GMT"})) == 10.0
    assert retry_after_s(Response(429, {"Retry-After": "soon"})) is None
    assert retry_after_s(Response(429, {"Retry-After": "inf"})) is None
    assert retry_after_s(Response(429)) is None
    assert retry_after_s(object()) is None


def test_config_normalisation() -> None:
    """Collections become tuples/frozensets; durations become float seconds."""
    assert RetryConfig(on=KeyError).on == (KeyError,)
    assert RetryConfig(on=[KeyError]).on == (KeyError,)
    assert RetryConfig(on={KeyError}).on == (KeyError,)
    assert RetryConfig(retry_status_codes=[409, 409]).retry_status_codes == frozenset({409})
    assert RetryConfig(retry_on_specific_errors=["a"]).retry_on_specific_errors == ("a",)
    assert RetryConfig(deadline=None).deadline is None
    assert math.isclose(RetryConfig(max_retry_after=2).max_retry_after, 2.0)


def test_merge_replaces_given_options_only() -> None:
    """merge() ignores None and returns the same object when nothing changes."""
    config = RetryConfig(max_attempts=4)
    assert config.merge() is config
    assert config.merge(max_attempts=None) is config
    merged = config.merge(base_delay=0.5, max_attempts=None)
    assert (merged.max_attempts, merged.base_delay) == (4, 0.5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, r"RetryConfig.max_attempts must be a positive integer \(1 = no retries\), got 0"),
        ({"backoff_factor": 0.5}, "RetryConfig.backoff_factor must be a finite number >= 1"),
        ({"jitter_factor": 1.5}, r"RetryConfig.jitter_factor must be a fraction in \[0, 1\]"),
        ({"jitter_factor": -0.1}, r"RetryConfig.jitter_factor must be a fraction in \[0, 1\]"),
        ({"jitter": "wobbly"}, "jitter must be"),
        (
            {"base_delay": -1},
            r"RetryConfig.base_delay must be a finite duration in seconds \(float or timedelta\) >= 0",
        ),
    ],
)
def test_config_rejects_bad_settings(options: dict[str, Any], message: str) -> None:
    """Invalid retry settings fail at construction with the rule that was broken."""
    with pytest.raises(commtel.ConfigurationError, match=message):
        RetryConfig(**options)


def test_boundary_settings_are_accepted() -> None:
    """The edges of each range are valid."""
    assert RetryConfig(max_attempts=1, backoff_factor=1, jitter_factor=0).max_attempts == 1
    assert RetryConfig(jitter_factor=1).jitter_factor == 1


def test_every_statistic_counts_every_call(seen: Seen, clock: FakeClock) -> None:
    """Counters add up over several calls (not merely set to one)."""
    core = _core(max_attempts=2, base_delay=0, jitter=False, budget=RetryBudget("b", ratio=0.0, min_retries=2))
    for _ in range(2):
        core.begin(clock.now).on_error(ValueError(), clock.now)  # not retryable
        call = core.begin(clock.now)
        call.on_error(ConnectionError(), clock.now)
        call.succeeded()
    for _ in range(2):
        with pytest.raises(RetryBudgetExhausted):
            core.begin(clock.now).on_error(ConnectionError(), clock.now)
    call = core.begin(clock.now)
    with pytest.raises(RetryBudgetExhausted):
        call.on_error(ConnectionError(), clock.now)
    stats = core.stats
    assert (stats.not_retryable, stats.after_retry, stats.retries, stats.budget_denied, stats.exhausted) == (
        2,
        2,
        2,
        3,
        3,
    )
    assert core.budget is not None
    assert core.budget.denied == 3


def test_exhausting_on_a_result_without_an_error_has_no_cause() -> None:
    """A call that only ever returned rejected results raises RetryExhausted with no __cause__."""
    call = _core(max_attempts=1).begin(0.0)
    with pytest.raises(RetryExhausted) as info:
        call.on_result("bad", "result", 0.0)
    assert info.value.__cause__ is None
    assert str(info.value)


def test_budget_denial_on_a_result_names_the_budget_and_chains_the_last_error(clock: FakeClock) -> None:
    """The denial message names budget, retry and operation; its cause is the last exception, if any."""
    budget = RetryBudget("orders", ratio=0.0, min_retries=1)
    call = _core(max_attempts=5, base_delay=0, jitter=False, budget=budget).begin(clock.now)
    first = ConnectionError("first")
    call.on_error(first, clock.now)
    with pytest.raises(RetryBudgetExhausted, match=r"retry budget 'orders' denied retry 2 of 'op'") as info:
        call.on_result("bad", "result", clock.now)
    assert info.value.__cause__ is first
    fresh = _core(max_attempts=5, budget=RetryBudget("x", ratio=0.0, min_retries=0)).begin(clock.now)
    with pytest.raises(RetryBudgetExhausted) as info:
        fresh.on_result("bad", "result", clock.now)
    assert info.value.__cause__ is None


def test_a_rejected_result_respects_the_deadline() -> None:
    """on_result stops at the deadline like on_error does."""
    call = _core(max_attempts=9, base_delay=5, backoff_factor=1, jitter=False, deadline=6).begin(0.0)
    assert call.on_result("bad", "result", 0.5) == 5.0
    with pytest.raises(RetryExhausted):
        call.on_result("bad", "result", 1.5)


def test_core_defaults_and_repr() -> None:
    """No platform by default; the repr names the class, operation and configuration."""
    core = RetryCore(RetryConfig(max_attempts=2), operation="sync")
    assert core.platform == ""
    assert repr(core) == f"RetryCore('sync', {RetryConfig(max_attempts=2)!r})"


def test_creating_a_policy_announces_it() -> None:
    """A new core emits RetryPolicyCreated(operation, platform) so its metrics exist from the start."""
    from commtel.retries._events import RetryPolicyCreated

    created: list[Event] = []
    commtel.events.set_listeners([created.append])
    RetryCore(RetryConfig(), operation="sync", platform="crm")
    assert created == [RetryPolicyCreated("sync", "crm")]


def test_a_budgeted_policy_deposits_at_the_time_of_the_call(clock: FakeClock) -> None:
    """With a budget the driver reads the clock up front, so the call lands in the current bucket."""
    from commtel import RetryPolicy

    budget = RetryBudget("b", ratio=1.0, min_retries=0)
    policy = RetryPolicy(operation="op", budget=budget, base_delay=0, jitter=False)
    failures = [ConnectionError()]

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    assert policy.call(flaky) == "ok"
    assert budget.snapshot(clock.now) == {"name": "b", "calls": 1, "retries": 1, "denied": 0}
    assert budget.snapshot() == budget.snapshot(clock.now)
    assert RetryCore(RetryConfig(), operation="x").timed is False
    assert RetryCore(RetryConfig(deadline=5), operation="x").timed is True


def test_seconds_settings_name_themselves_when_negative() -> None:
    """Each duration setting says which one was wrong."""
    for name in ("base_delay", "max_delay", "deadline", "max_retry_after"):
        with pytest.raises(
            commtel.ConfigurationError, match=rf"^RetryConfig\.{name} must be a finite duration in seconds"
        ):
            RetryConfig(**{name: -1})
    with pytest.raises(commtel.ConfigurationError, match=r"^RetryBudget\.period must be a finite duration .* > 0"):
        RetryBudget(period=-1)


def test_budget_defaults_and_repr() -> None:
    """Default budget: 20% of calls plus 10 retries per 10 s, in 1 s buckets."""
    budget = RetryBudget()
    assert (budget.name, budget.ratio, budget.period_s, budget.min_retries) == ("default", 0.2, 10.0, 10)
    assert repr(budget) == "RetryBudget('default', ratio=0.2, period=10.0s, min_retries=10)"
    assert repr(RetryBudget("s", redis="redis://127.0.0.1:1/0")).endswith("min_retries=10, redis)")
    assert RetryBudget(buckets=1).snapshot(0.0)["calls"] == 0
    tenths = RetryBudget(ratio=1.0, min_retries=0)
    tenths.record_call(0.95)  # bucket 0 of 1 s buckets
    assert tenths.snapshot(9.99)["calls"] == 1
    assert tenths.snapshot(10.0)["calls"] == 0


def test_an_unused_budget_holds_nothing_even_early_in_the_clock() -> None:
    """Untouched buckets count zero calls whatever the time (a clock may start near 0 after boot)."""
    budget = RetryBudget(ratio=1.0, min_retries=0)
    assert budget.try_acquire(0.0) is False
    assert budget.try_acquire(0.5) is False
    assert budget.denied == 2


def test_sub_second_waits_are_kept() -> None:
    """Waits below one second are honoured as given, from every source."""
    assert retry_after_s(RateLimitedByServer("x", retry_after=0.5)) == 0.5
    assert retry_after_s(Throttled(0.25)) == 0.25
    assert retry_after_s(Response(429, {"Retry-After": "0.75"})) == 0.75
    assert retry_after_s(Response(429, {"Retry-After": "0"})) == 0.0


def test_http_date_waits_are_measured_from_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP-date half a second away gives half a second; a past date gives zero."""
    monkeypatch.setattr("commtel.retries._classify.wall", lambda: 1_000_000_009.5)
    assert retry_after_s(Response(429, {"Retry-After": "Sun, 09 Sep 2001 01:46:50 GMT"})) == 0.5
    monkeypatch.setattr("commtel.retries._classify.wall", lambda: 1_000_000_100.0)
    assert retry_after_s(Response(429, {"Retry-After": "Sun, 09 Sep 2001 01:46:50 GMT"})) == 0.0


class HeaderError(Exception):
    """An exception that carries response headers itself (no .response)."""

    def __init__(self, headers: dict[str, object]) -> None:
        super().__init__("limited")
        self.headers = headers


def test_headers_are_read_from_the_exception_itself_and_must_be_text() -> None:
    """An exception's own headers count; a non-text header value is ignored."""
    assert retry_after_s(HeaderError({"Retry-After": "3"})) == 3.0
    assert retry_after_s(HeaderError({"Retry-After": 3})) is None
    assert retry_after_s(Response(429, {"Retry-After": 3})) is None  # type: ignore[dict-item]


def test_results_only_match_real_statuses() -> None:
    """600 is not a server error; a float status is not a status."""
    classify = Classifier(RetryConfig())
    assert classify.result(Response(599)) == "599"
    assert classify.result(Response(600)) is None
    assert classify.result(Response(503.0)) is None


def test_results_are_checked_when_either_http_family_is_on() -> None:
    """Turning off one of the 5xx / 429 families still inspects results for the other."""
    only_5xx = Classifier(RetryConfig(retry_on_rate_limit=False))
    only_429 = Classifier(RetryConfig(retry_on_server_error=False))
    assert (only_5xx.checks_results, only_429.checks_results) == (True, True)
    assert (only_5xx.result(Response(503)), only_5xx.result(Response(429))) == ("503", None)
    assert (only_429.result(Response(429)), only_429.result(Response(503))) == ("rate_limited", None)
