"""Typed events that policies emit, and the listeners that observe them.

Policies decide; listeners observe. A policy builds a frozen event only when
someone listens (``if (listeners := active_listeners()):``) and hands it to
:func:`emit`. The telemetry layer is one listener among possibly many; a listener
that raises is logged and never breaks the caller.

Global listeners follow stamina's hook convention: ``set_listeners(None)`` restores
the defaults (the telemetry listener), ``set_listeners([])`` turns events off.
"""

from __future__ import annotations

import logging
import threading

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


__all__ = ["Event", "Listener", "active_listeners", "emit", "get_listeners", "set_listeners"]

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


def _default_listeners() -> tuple[Listener, ...]:
    from .telemetry._listener import get_telemetry_listener

    return (get_telemetry_listener(),)


def set_listeners(listeners: Iterable[Listener] | None) -> None:
    """Replace the global listeners; ``None`` restores the defaults, ``[]`` disables events.

    .. versionadded:: 0.1.0
    """
    global _listeners  # noqa: PLW0603
    with _lock:
        _listeners = None if listeners is None else tuple(listeners)


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
