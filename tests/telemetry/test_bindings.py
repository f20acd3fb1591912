"""Every fast-path binder records exactly what its event's handler records."""

from __future__ import annotations

import dataclasses
import re

from collections.abc import Iterator
from typing import Any

import pytest

from opentelemetry import trace
from opentelemetry.trace import Span
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from commtel._events import Event
from commtel._telemetry_handlers import get_telemetry_listener
from commtel.events import (
    CircuitCallRecorded,
    ConcurrencyAdmitted,
    ConcurrencyReleased,
    HedgeCallFinished,
    OperationCompleted,
    RateLimitDecided,
    RetryCallFinished,
)
from commtel.telemetry import _listener
from commtel.telemetry._metrics import use_registry
from commtel.telemetry._operations import completion_template


# The fields a Template passes per emission, by event type (others are prebuilt Bindings: none).
_TEMPLATE_FIELDS: dict[type[Event], tuple[str, ...]] = {
    OperationCompleted: completion_template("op", "sim").fields,
}


def _samples(span: Span) -> list[Event]:
    return [
        RetryCallFinished("op", "sim", "success_first_try"),
        RetryCallFinished("op", "", "exhausted"),
        CircuitCallRecorded("svc", "success"),
        CircuitCallRecorded("svc", "failure"),
        RateLimitDecided("lim", "sim", True, 1, 0.0),  # noqa: FBT003 - the allowed field
        RateLimitDecided("lim", "sim", False, 2, 1.5),  # noqa: FBT003 - the allowed field
        OperationCompleted("op", "sim", 0.25, True, None, span),  # noqa: FBT003 - the success field
        OperationCompleted("op", "sim", 3.0, False, "TimeoutError", span),  # noqa: FBT003 - the success field
        OperationCompleted("op", "", 0.0005, True, None, trace.INVALID_SPAN),  # noqa: FBT003 - the success field
        ConcurrencyAdmitted("pool"),
        ConcurrencyReleased("pool"),
        HedgeCallFinished("search", "primary"),
        HedgeCallFinished("search", "hedge"),
    ]


@pytest.fixture
def span() -> Iterator[Span]:
    """A real recording, sampled span (its ids become exemplars)."""
    with trace.get_tracer("test").start_as_current_span("bound") as current:
        yield current


def _exposition(registry: CollectorRegistry) -> str:
    """OpenMetrics text without what differs between two runs: creation times, exemplar timestamps."""
    text = generate_latest(registry).decode()
    lines = [line for line in text.splitlines() if "_created" not in line]
    return "\n".join(re.sub(r"(# \{[^}]*\} \S+) \S+$", r"\1", line) for line in lines)


def _recorded(run: Any) -> str:
    registry = CollectorRegistry()
    use_registry(registry)
    run()
    return _exposition(registry)


def test_samples_cover_every_bound_event_type(span: Span) -> None:
    """Each event type with a binder has samples below (a new binder needs its own)."""
    get_telemetry_listener()
    assert set(_listener._binders) == {type(event) for event in _samples(span)}
    assert set(_listener._binders) <= set(_listener._handlers)


def test_binder_and_handler_record_the_same_samples(span: Span) -> None:
    """Binder then call (with a placeholder template for varying fields) == handler, exposition for exposition."""
    get_telemetry_listener()
    nothing = _recorded(lambda: None)
    for event in _samples(span):
        event_type = type(event)
        fields = _TEMPLATE_FIELDS.get(event_type, ())
        values = [getattr(event, name) for name in fields]
        # A binder must take varying fields from the call, never from the template it was given.
        placeholders = dict.fromkeys(fields)
        template = dataclasses.replace(event, **placeholders) if fields else event
        bound = _recorded(lambda: _listener._binders[event_type](template)(*values))
        handled = _recorded(lambda: _listener._handlers[event_type](event))
        assert bound == handled, event
        assert handled != nothing, f"{event} recorded nothing: the comparison would prove nothing"
