"""Helpers for testing code that uses commtel.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import _events
from ._events import Event
from ._timing import set_testing_flag


__all__ = ["capture_events", "set_testing"]


class _Restore:
    __slots__ = ("_previous",)

    def __init__(self, *, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        set_testing_flag(on=self._previous)


def set_testing(*, on: bool = True) -> _Restore:
    """Make every backoff and limiter wait instant (or restore real waits).

    Usable as a plain call or as a context manager that restores the previous
    setting on exit.

    .. versionadded:: 0.1.0
    """
    return _Restore(previous=set_testing_flag(on=on))


@contextmanager
def capture_events() -> Iterator[list[Event]]:
    """Collect every event emitted inside the block, in addition to the current listeners.

    .. versionadded:: 0.1.0
    """
    captured: list[Event] = []
    previous = _events.active_listeners()
    _events.set_listeners((*previous, captured.append))
    try:
        yield captured
    finally:
        _events.set_listeners(previous)
