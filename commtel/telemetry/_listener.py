"""The telemetry listener: turns policy events into span events, metric samples and logs.

Each component keeps its event handlers in its own ``_telemetry.py`` module and
registers them with :func:`handles`; this module only dispatches by event type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._events import Event


__all__ = ["TelemetryListener", "binds", "handles"]

_E = TypeVar("_E", bound=Event)
_handlers: dict[type[Event], Callable[[Any], None]] = {}
_binders: dict[type[Event], Callable[[Any], Callable[..., None]]] = {}


def handles(*event_types: type[_E]) -> Callable[[Callable[[_E], None]], Callable[[_E], None]]:
    """Register the decorated function as the telemetry handler of *event_types*."""

    def register(handler: Callable[[_E], None]) -> Callable[[_E], None]:
        for event_type in event_types:
            _handlers[event_type] = handler
        return handler

    return register


def binds(
    *event_types: type[_E],
) -> Callable[[Callable[[_E], Callable[..., None]]], Callable[[_E], Callable[..., None]]]:
    """Register the decorated function as the binder of *event_types*.

    A binder gets one prebuilt event and returns a callable doing that event's work
    (typically a bound metric child's ``inc``): with no arguments for a
    :class:`commtel._events.Binding`, with the changing fields' values for a
    :class:`commtel._events.Template`. It must record exactly what the event's
    handler records (a test runs both).
    """

    def register(binder: Callable[[_E], Callable[..., None]]) -> Callable[[_E], Callable[..., None]]:
        for event_type in event_types:
            _binders[event_type] = binder
        return binder

    return register


class TelemetryListener:
    """Dispatch each event to its registered handler; unknown events are ignored.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers = _handlers

    def __call__(self, event: Event, /) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def bind(self, event: Event) -> Callable[..., None] | None:
        """The fastest way to handle *event* again and again (``None``: call me as usual)."""
        binder = _binders.get(type(event))
        return None if binder is None else binder(event)

    def __repr__(self) -> str:
        return f"TelemetryListener(events={len(self._handlers)})"
