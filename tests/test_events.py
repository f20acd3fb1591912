"""The event mechanism: listeners set and restored, failures isolated, capture helper."""

from __future__ import annotations

import logging

from collections.abc import Callable
from dataclasses import dataclass

import pytest

import commtel
import commtel.events

from commtel import _events
from commtel._timing import is_testing, sleep
from commtel.testing import capture_events, set_testing


@dataclass(frozen=True, slots=True)
class Pinged(commtel.events.Event):
    n: int


def test_default_listeners_are_the_telemetry_listener() -> None:
    """set_listeners(None) restores the telemetry listener as the only default."""
    commtel.events.set_listeners(None)
    (listener,) = commtel.events.get_listeners()
    assert type(listener).__name__ == "TelemetryListener"


def test_empty_listeners_turn_events_off() -> None:
    """With [] no listener is active, so policies build no events at all."""
    commtel.events.set_listeners([])
    assert _events.active_listeners() == ()


def test_failing_listener_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    """A listener that raises never reaches the caller and does not stop the next listener."""
    seen: list[commtel.events.Event] = []

    def broken(event: commtel.events.Event) -> None:
        raise RuntimeError("listener bug")

    commtel.events.set_listeners([broken, seen.append])
    with caplog.at_level(logging.ERROR, logger="commtel.events"):
        _events.emit(Pinged(1))
    assert seen == [Pinged(1)]
    assert "listener bug" in caplog.text


def test_capture_events_collects_and_restores() -> None:
    """capture_events adds a collector for the block and restores the previous listeners."""
    before = commtel.events.get_listeners()
    with capture_events() as events:
        _events.emit(Pinged(2))
    assert events == [Pinged(2)]
    assert commtel.events.get_listeners() == before


def test_set_testing_makes_waits_instant_and_restores() -> None:
    """set_testing() turns sleeps off for the block and restores the old setting."""
    with set_testing(on=True):
        assert is_testing()
        sleep(30)  # would hang the test if it slept
    assert not is_testing()


def test_binding_follows_listener_changes_and_isolates_failures(caplog: pytest.LogCaptureFixture) -> None:
    """A Binding delivers to the current listeners, re-resolving after set_listeners."""
    binding = _events.Binding(Pinged(3))
    first: list[commtel.events.Event] = []
    commtel.events.set_listeners([first.append])
    binding()
    second: list[commtel.events.Event] = []

    def broken(event: commtel.events.Event) -> None:
        raise RuntimeError("bound listener bug")

    commtel.events.set_listeners([broken, second.append])
    with caplog.at_level(logging.ERROR, logger="commtel.events"):
        binding()
    commtel.events.set_listeners([])
    binding()
    assert first == [Pinged(3)]
    assert second == [Pinged(3)]
    assert "bound listener bug" in caplog.text


def test_binding_counts_on_the_active_registry(registry) -> None:
    """The telemetry listener binds straight to the metric child of the current registry."""
    from prometheus_client import CollectorRegistry

    from commtel.events import CircuitCallRecorded
    from commtel.telemetry._metrics import use_registry

    binding = _events.Binding(CircuitCallRecorded("b", "success"))
    binding()
    assert registry.get_sample_value("commtel_circuit_calls_total", {"breaker": "b", "result": "success"}) == 1.0
    other = CollectorRegistry()
    use_registry(other)
    binding()
    assert other.get_sample_value("commtel_circuit_calls_total", {"breaker": "b", "result": "success"}) == 1.0


@dataclass(frozen=True, slots=True)
class Timed(commtel.events.Event):
    name: str
    took: float


def test_template_builds_whole_events_for_listeners_that_do_not_bind(caplog: pytest.LogCaptureFixture) -> None:
    """A Template hands plain listeners the event with the given field values; none listening: None."""
    template = _events.Template(Timed("op", 0.0), "took")
    seen: list[commtel.events.Event] = []

    def broken(event: commtel.events.Event) -> None:
        raise RuntimeError("templated listener bug")

    commtel.events.set_listeners([broken, seen.append])
    deliver = template.bound()
    assert deliver is not None
    with caplog.at_level(logging.ERROR, logger="commtel.events"):
        deliver(1.5)
        deliver(2.5)
    assert seen == [Timed("op", 1.5), Timed("op", 2.5)]
    assert "templated listener bug" in caplog.text
    commtel.events.set_listeners([])
    assert template.bound() is None


def test_template_passes_values_to_a_binding_listener() -> None:
    """A listener with bind() gets the template once and then only the values."""
    templates: list[commtel.events.Event] = []
    values: list[tuple[object, ...]] = []

    class Binder:
        def __call__(self, event: commtel.events.Event) -> None:
            raise AssertionError("a binding listener is not called per event")

        def bind(self, event: commtel.events.Event) -> Callable[..., None]:
            templates.append(event)
            return lambda *given: values.append(given)

    template = _events.Template(Timed("op", 0.0), "took")
    commtel.events.set_listeners([Binder()])
    for took in (0.1, 0.2):
        deliver = template.bound()
        assert deliver is not None
        deliver(took)
    assert templates == [Timed("op", 0.0)]
    assert values == [(0.1,), (0.2,)]
