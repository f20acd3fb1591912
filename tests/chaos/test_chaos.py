"""Fault injection: rates from seeded draws, latency, errors and outcomes, switched at run time, marked on spans."""

from __future__ import annotations

import asyncio
import random

import pytest

from prometheus_client import CollectorRegistry

from commtel.chaos import ChaosSettings, FaultInjector, InjectedFault
from commtel.chaos._core import FaultPlan, plan
from commtel.errors import ConfigurationError
from commtel.telemetry import start_span
from commtel.testing import set_testing
from tests.harness.clock import FakeClock


def _draws(*values: float):
    it = iter(values)
    return lambda: next(it)


def test_plan_uses_one_draw_per_fault() -> None:
    """Latency, then error, else outcome: each decided by its own draw against its rate."""
    settings = ChaosSettings(latency_rate=0.5, latency_s=2.0, error_rate=0.5, outcome_rate=0.5)
    assert plan(settings, _draws(0.1, 0.9, 0.1)) == FaultPlan(2.0, False, True)
    assert plan(settings, _draws(0.9, 0.1)) == FaultPlan(0.0, True, False)  # error: no outcome draw
    assert plan(settings, _draws(0.9, 0.9, 0.9)) is None
    assert plan(ChaosSettings(enabled=False, error_rate=1.0), _draws()) is None  # off: no draw at all


def test_rates_hold_over_many_calls(registry: CollectorRegistry) -> None:
    """10 % errors over 2000 seeded calls: between 7 % and 13 % raised InjectedFault, each counted."""
    chaos = FaultInjector("pay", error_rate=0.1, random=random.Random(4).random)
    errors = 0
    for _ in range(2000):
        try:
            chaos.call(lambda: None)
        except InjectedFault as exc:
            assert str(exc) == "fault injected by 'pay'"
            errors += 1
    assert 140 <= errors <= 260
    assert registry.get_sample_value("commtel_faults_injected_total", {"injector": "pay", "fault": "error"}) == errors


def test_latency_is_slept_before_the_call(clock: FakeClock) -> None:
    """Injected latency is slept (the fake clock records it), then the call runs."""
    chaos = FaultInjector("slow", latency_rate=1.0, latency_s=1.5)
    assert chaos.call(lambda: "ran") == "ran"
    assert clock.sleeps == [1.5]

    async def main() -> str:
        return await chaos.acall(asyncio.sleep, 0, "async ran")

    assert asyncio.run(main()) == "async ran"
    assert clock.sleeps == [1.5, 1.5]


def test_outcome_replaces_the_call_and_custom_errors_are_raised() -> None:
    """An outcome answers without calling; an error class, instance or factory is raised."""
    called: list[int] = []
    chaos = FaultInjector("o", outcome_rate=1.0, outcome=lambda: {"status": 503})
    assert chaos.call(called.append, 1) == {"status": 503}
    assert called == []
    for error in (TimeoutError, TimeoutError("injected"), lambda: TimeoutError("made")):
        with pytest.raises(TimeoutError):
            FaultInjector("e", error_rate=1.0, error=error).call(lambda: None)


def test_switched_at_run_time() -> None:
    """enabled and update() change what later calls get; invalid updates change nothing."""
    chaos = FaultInjector("g", error_rate=1.0)
    chaos.enabled = False
    assert chaos.call(lambda: "ok") == "ok"
    chaos.enabled = True
    with pytest.raises(InjectedFault):
        chaos.call(lambda: "ok")
    chaos.update(error_rate=0.0)
    assert chaos.call(lambda: "ok") == "ok"
    with pytest.raises(ConfigurationError, match="error_rate must be within"):
        chaos.update(error_rate=2)
    with pytest.raises(ConfigurationError, match="update takes"):
        chaos.update(erorr_rate=1)
    assert chaos.settings.error_rate == 0.0


def test_every_injected_fault_is_marked_on_its_span(spans) -> None:
    """The span of a call with a fault carries commtel.chaos.injected and one event per fault."""
    chaos = FaultInjector("mark", latency_rate=1.0, latency_s=0.5, error_rate=1.0)
    with set_testing(), start_span("op"), pytest.raises(InjectedFault):
        chaos.call(lambda: None)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "op"]
    assert span.attributes["commtel.chaos.injected"] is True
    assert [e.attributes["commtel.chaos.fault"] for e in span.events if e.name == "commtel.chaos.fault"] == [
        "latency",
        "error",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"error_rate": 1.5}, "error_rate must be within"),
        ({"latency_s": -1}, "latency_s must be >= 0"),
        ({"outcome_rate": 0.5}, "outcome_rate needs outcome="),
        ({"error": 42}, "error must be an exception class"),
        ({"outcome": 503}, "outcome must be a function"),
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FaultInjector("x", **options)  # type: ignore[arg-type]
