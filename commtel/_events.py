"""Typed events that policies emit, and the listeners that observe them.

Policies decide; listeners observe. A policy builds a frozen event only when
someone listens (``if (listeners := active_listeners()):``) and hands it to
:func:`emit`. The telemetry layer is one listener among possibly many; a listener
that raises is logged and never breaks the caller.

Global listeners follow stamina's hook convention: ``set_listeners(None)`` restores
the defaults (the telemetry listener), ``set_listeners([])`` turns events off.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from . import _defaults


__all__ = [
    "Binding",
    "Event",
    "Listener",
    "Template",
    "active_listeners",
    "emit",
    "get_listeners",
    "invalidate_bindings",
    "set_listeners",
]

_log = logging.getLogger("commtel.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event a commtel policy emits.

    .. versionadded:: 0.1.0
    """


class Listener(Protocol):
    """Anything called with each event; must be cheap and must not block."""

    def __call__(self, event: Event, /) -> None: ...


_lock = threading.Lock()
# None until first use: then resolved to the defaults or to what the user set.
_listeners: tuple[Listener, ...] | None = None
# Bumped whenever what a Binding delivers to may have changed (listeners, metrics registry).
_generation = 0


def _default_listeners() -> tuple[Listener, ...]:
    return _defaults.listeners()


def set_listeners(listeners: Iterable[Listener] | None) -> None:
    """Replace the global listeners; ``None`` restores the defaults, ``[]`` disables events.

    .. versionadded:: 0.1.0
    """
    global _listeners, _generation  # noqa: PLW0603
    with _lock:
        _listeners = None if listeners is None else tuple(listeners)
        _generation += 1


def invalidate_bindings() -> None:
    """Make every :class:`Binding` re-resolve on its next call (e.g. after a registry swap)."""
    global _generation  # noqa: PLW0603
    _generation += 1


def get_listeners() -> tuple[Listener, ...]:
    """Return the listeners events currently go to.

    .. versionadded:: 0.1.0
    """
    return active_listeners()


def active_listeners() -> tuple[Listener, ...]:
    """Hot-path accessor: the current listeners, resolving defaults on first use."""
    global _listeners  # noqa: PLW0603
    listeners = _listeners
    if listeners is None:
        with _lock:
            if _listeners is None:
                _listeners = _default_listeners()
            listeners = _listeners
    return listeners


def emit(event: Event, listeners: tuple[Listener, ...] | None = None) -> None:
    """Hand *event* to every listener; a failing listener is logged, never raised."""
    for listener in active_listeners() if listeners is None else listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("commtel listener %r failed on %s", listener, type(event).__name__)


def _isolated(listener: Listener, event: Event) -> Callable[[], None]:
    def deliver() -> None:
        emit(event, (listener,))

    return deliver


class _Resolved:
    """What a prebuilt event is delivered through: resolved lazily, again whenever
    listeners or the metrics registry change."""

    __slots__ = ("_deliver", "_generation", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._generation = -1
        self._deliver: Callable[..., None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.event!r})"

    def _unbound(self, listener: Listener) -> Callable[..., None]:
        """How *listener*, which does not bind, gets the event."""
        return _isolated(listener, self.event)

    def _resolve(self) -> None:
        generation = _generation
        parts: list[Callable[..., None]] = []
        for listener in active_listeners():
            bind = getattr(listener, "bind", None)
            bound = bind(self.event) if bind is not None else None
            parts.append(bound if bound is not None else self._unbound(listener))
        if not parts:
            self._deliver = None
        elif len(parts) == 1:
            self._deliver = parts[0]
        else:
            calls = tuple(parts)

            def deliver_all(*values: object) -> None:
                for call in calls:
                    call(*values)

            self._deliver = deliver_all
        self._generation = generation


class Binding(_Resolved):
    """A prebuilt event a policy emits again and again (a first-try success, a closed call).

    Calling the binding delivers the event with the least work: a listener that offers
    ``bind(event) -> Callable[[], None]`` (the telemetry listener binds straight to the
    metric child's ``inc``) is called through that; any other listener as usual, its
    failures logged.
    """

    __slots__ = ()

    def __call__(self) -> None:
        if self._generation != _generation:
            self._resolve()
        deliver = self._deliver
        if deliver is not None:
            deliver()


class Template(_Resolved):
    """An event emitted again and again whose *fields* change every time (a duration, a span).

    ``template.bound()`` is what to call with those fields' values, in order, or ``None``
    when nobody listens. A listener that binds gets the values straight: its
    ``bind(event)`` returns a callable taking them (the telemetry listener observes a
    histogram child). Any other listener gets the whole event, built for it, its
    failures logged.
    """

    __slots__ = ("fields",)

    def __init__(self, event: Event, *fields: str) -> None:
        super().__init__(event)
        self.fields = fields

    def bound(self) -> Callable[..., None] | None:
        """Call the result with the field values (a method, not ``__call__``: ~60 ns cheaper)."""
        if self._generation != _generation:
            self._resolve()
        return self._deliver

    def event_with(self, *values: object) -> Event:
        """The whole event that ``bound()(*values)`` delivers."""
        return dataclasses.replace(self.event, **dict(zip(self.fields, values, strict=True)))

    def _unbound(self, listener: Listener) -> Callable[..., None]:
        def deliver(*values: object) -> None:
            emit(self.event_with(*values), (listener,))

        return deliver
