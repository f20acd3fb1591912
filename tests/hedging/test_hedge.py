"""Hedging: a second attempt after the delay, first good answer wins, losers cancelled, bounded by the budget."""

from __future__ import annotations

import asyncio

import pytest

from prometheus_client import CollectorRegistry

from commtel.errors import ConfigurationError
from commtel.hedging import Hedge, HedgeDenied, HedgeLaunched
from commtel.retries import RetryBudget
from commtel.telemetry import start_span
from commtel.testing import capture_events
from tests.harness.virtual_time import run_in_virtual_time


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class Script:
    """Attempts that follow a script: each entry is what attempt i does (a value, an exception, or 'hang')."""

    def __init__(self, *steps: object, pause_s: float = 0.0) -> None:
        self.steps = list(steps)
        self.pause_s = pause_s
        self.started = 0
        self.cancelled: list[int] = []

    async def __call__(self) -> object:
        i = self.started
        self.started += 1
        step = self.steps[i]
        try:
            if step == "hang":
                await asyncio.sleep(30)  # the behaviour under test: an attempt that never answers
            await asyncio.sleep(self.pause_s)  # the behaviour under test: the attempt's own latency
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        if isinstance(step, BaseException):
            raise step
        return step


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_fast_primary_is_not_hedged(registry: CollectorRegistry) -> None:
    """The primary answers before the delay: one attempt, result 'primary'."""
    script = Script("fast")
    assert asyncio.run(Hedge("h", delay=1.0).acall(script)) == "fast"
    assert script.started == 1
    assert _sample(registry, "commtel_hedge_calls_total", hedge="h", result="primary") == 1
    assert _sample(registry, "commtel_hedges_total", hedge="h", decision="launched") == 0


def test_slow_primary_is_hedged_and_the_loser_cancelled(registry: CollectorRegistry, spans) -> None:
    """After the delay a second attempt starts; its answer wins; the primary is cancelled."""
    script = Script("hang", "hedge answer")

    async def main() -> object:
        with start_span("op"):
            result = await Hedge("h", delay=0.02).acall(script)
        await asyncio.sleep(0)  # let the cancelled primary run its except block
        return result

    assert asyncio.run(main()) == "hedge answer"
    assert script.cancelled == [0]
    assert _sample(registry, "commtel_hedge_calls_total", hedge="h", result="hedge") == 1
    assert _sample(registry, "commtel_hedges_total", hedge="h", decision="launched") == 1
    (span,) = [s for s in spans.get_finished_spans() if s.name == "op"]
    (event,) = [e for e in span.events if e.name == "commtel.hedge.launched"]
    assert event.attributes["commtel.hedge.reason"] == "delay"
    assert event.attributes["commtel.hedge.delay_s"] >= 0.02


def test_a_failed_primary_starts_the_hedge_at_once() -> None:
    """The primary raises before the delay: the next attempt starts immediately (reason 'failure')."""
    script = Script(ConnectionError("reset"), "second")
    with capture_events() as events:
        assert asyncio.run(Hedge("h", delay=30).acall(script)) == "second"
    assert [e.reason for e in events if isinstance(e, HedgeLaunched)] == ["failure"]


def test_every_attempt_failing_raises_the_last_error_or_returns_the_last_result(registry: CollectorRegistry) -> None:
    """All attempts fail: the last exception is raised; failing results (5xx) come back as the last result."""
    with pytest.raises(ConnectionError, match="second"):
        asyncio.run(Hedge("h", delay=30).acall(Script(ConnectionError("first"), ConnectionError("second"))))
    last = _Response(503)
    assert asyncio.run(Hedge("h", delay=30).acall(Script(_Response(502), last))) is last
    assert _sample(registry, "commtel_hedge_calls_total", hedge="h", result="failed") == 2


def test_budget_bounds_hedges(registry: CollectorRegistry) -> None:
    """A spent retry budget denies the hedge: counted, and the call waits for the primary."""
    budget = RetryBudget("shared", ratio=0.0, min_retries=0)
    script = Script("slow primary", "never started", pause_s=0.05)
    with capture_events() as events:
        assert asyncio.run(Hedge("h", delay=0.01, budget=budget).acall(script)) == "slow primary"
    assert script.started == 1
    assert [e.budget for e in events if isinstance(e, HedgeDenied)] == ["shared"]
    assert _sample(registry, "commtel_hedges_total", hedge="h", decision="denied") == 1
    assert budget.denied == 1
    assert budget.snapshot()["calls"] == 1  # every call deposits one


def test_max_hedges_launches_one_more_per_delay() -> None:
    """With max_hedges=2, a second hedge starts one delay after the first."""
    script = Script("hang", "hang", "third")
    with capture_events() as events:
        assert asyncio.run(Hedge("h", delay=0.01, max_hedges=2).acall(script)) == "third"
    assert [e.attempt for e in events if isinstance(e, HedgeLaunched)] == [1, 2]


def test_delay_follows_the_observed_quantile() -> None:
    """With no fixed delay there is no hedging until min_samples latencies are known, then the p95 is used."""
    hedge = Hedge("h", min_samples=5)

    async def main() -> None:
        assert hedge.current_delay() is None
        for _ in range(5):
            await hedge.acall(Script("ok", pause_s=0.01))
        delay = hedge.current_delay()
        assert delay is not None and 0.009 <= delay < 0.5

    asyncio.run(main())


def test_cancelling_the_caller_cancels_every_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancelled caller leaves no attempt running."""
    script = Script("hang", "hang")

    async def main() -> None:
        call = asyncio.create_task(Hedge("h", delay=0.01).acall(script))
        await asyncio.sleep(0.02)  # virtual time past the hedge delay: both attempts started
        assert script.started == 2
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0)

    run_in_virtual_time(main(), monkeypatch)
    assert sorted(script.cancelled) == [0, 1]


def test_decorates_async_functions_only() -> None:
    """Sync functions cannot be hedged (attempts must run side by side): a clear error."""
    hedge = Hedge("h", delay=1.0)

    @hedge
    async def fetch() -> int:
        return 1

    assert asyncio.run(fetch()) == 1
    with pytest.raises(ConfigurationError, match="only decorate async"):
        hedge(lambda: 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"quantile": 1.0}, "quantile must be within"),
        ({"max_hedges": 0}, "max_hedges must be an integer >= 1"),
        ({"min_samples": 0}, "min_samples must be an integer >= 1"),
        ({"delay": -1}, "delay must be >= 0"),
        ({"window_s": 0}, "window_s must be > 0"),
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Hedge("h", **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        Hedge.check_options(**options)


def test_cuts_the_tail_of_a_long_tailed_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    """3 % of calls take 20x longer: hedging at the observed p95 cuts p99 >= 2x for <= 10 % extra calls.

    On virtual time, so the modelled latencies are measured exactly however loaded the machine is.
    """
    from commtel.simulator import LatencyModel, SimulatedDependency, open_loop

    def dependency() -> SimulatedDependency:
        return SimulatedDependency(
            LatencyModel(base_latency_s=0.01, knee=10_000, jitter=0.1, tail_rate=0.03, tail_factor=20), seed=5
        )

    async def measure(hedged: bool) -> tuple[float, int]:
        target = dependency()
        hedge = Hedge("tail", budget=RetryBudget("tail", ratio=0.1))
        call = (lambda: hedge.acall(target.acall)) if hedged else target.acall
        run = await open_loop(call, rate=300, duration=2.5, seed=2)
        return run.p99(0.5, 3.0), target.calls

    plain_p99, plain_calls = run_in_virtual_time(measure(hedged=False), monkeypatch)
    hedged_p99, hedged_calls = run_in_virtual_time(measure(hedged=True), monkeypatch)
    assert plain_p99 >= 0.15  # the tail is there: 20 x 10 ms
    assert plain_p99 >= 2 * hedged_p99
    assert plain_calls <= hedged_calls <= 1.10 * plain_calls
