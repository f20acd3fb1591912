"""Timeouts: async calls are cancelled at the deadline; sync calls see it and stop themselves.

The deadline of the innermost timeout lives in a context variable, so code below it
(retry loops, instrumented HTTP clients, your own code through :func:`remaining`) can
bound what it does by the time left. Python cannot interrupt a running sync call
safely, so :meth:`Timeout.call` only publishes the deadline and refuses to start once it
passed; :meth:`Timeout.acall` cancels the awaited call when it expires.
"""

from __future__ import annotations

import asyncio
import sys

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Literal, TypeVar

from .. import _events, _timing
from .._durations import seconds
from .._exceptions import ConfigurationError
from .._wrapping import WrapsCalls
from ._core import Deadline, tighter
from ._errors import TimeoutExceeded
from ._events import TimeoutCreated, TimeoutExpired


__all__ = ["Timeout", "current_deadline", "expired", "remaining", "run_within"]

_T = TypeVar("_T")

_deadline: ContextVar[Deadline | None] = ContextVar("commtel_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The innermost active deadline, or ``None`` outside every timeout.

    .. versionadded:: 0.1.0
    """
    return _deadline.get()


def remaining() -> float | None:
    """Seconds left before the innermost active timeout expires (``None``: no timeout active).

    Pass it on to what cannot be cancelled from outside: a socket timeout, a sync HTTP
    client's ``timeout=``, a database statement timeout.

    .. versionadded:: 0.1.0
    """
    deadline = _deadline.get()
    return None if deadline is None else deadline.remaining(_timing.monotonic())


class _Expired(Exception):
    """Our own timer fired (as opposed to a TimeoutError raised by the call itself)."""


if sys.version_info >= (3, 11):

    async def _bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
        timer = asyncio.timeout(seconds)
        try:
            async with timer:
                return await awaitable
        except TimeoutError:
            if timer.expired():
                raise _Expired from None
            raise

else:  # pragma: no cover - exercised on 3.10 only

    async def _bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except asyncio.TimeoutError:
            raise _Expired from None


def _call_sync(timeout: Timeout, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    token = _deadline.set(timeout._start())
    try:
        return fn(*args, **kwargs)
    finally:
        _deadline.reset(token)


async def _call_async(
    timeout: Timeout, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    return await run_within(timeout._start(), fn(*args, **kwargs))


class Timeout(WrapsCalls):
    """A time limit on a call: *seconds* from when it starts, never past an enclosing timeout.

    Async calls are cancelled when it expires and :class:`~commtel.errors.TimeoutExceeded`
    (a :class:`TimeoutError`) is raised. Sync calls cannot be interrupted: they run with
    the deadline published (:func:`remaining`) for themselves and the HTTP clients commtel
    instruments, and are refused before starting once it passed. Nested timeouts keep the
    earlier deadline; when the enclosing one expires first, it is reported in its name.

    Args:
        seconds: The limit (seconds or ``timedelta``).
        name: The ``timeout`` label of ``commtel_timeouts_total``.
        scope: ``"attempt"`` (one attempt, inside retries) or ``"total"`` (the whole call).

    Example::

        total = Timeout(5.0, name="search")
        result = await total.acall(client.get, "/search")

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = ("name", "scope", "seconds")

    def __init__(
        self, seconds: float | timedelta, *, name: str = "default", scope: Literal["attempt", "total"] = "total"
    ) -> None:
        value = _checked(seconds, scope)
        self.seconds = value
        self.name = name
        self.scope = scope
        if listeners := _events.active_listeners():
            _events.emit(TimeoutCreated(name, scope), listeners)

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, name={self.name!r}, scope={self.scope!r})"

    def deadline(self) -> Deadline:
        """The deadline a call starting now gets (the enclosing one when that comes first).

        .. versionadded:: 0.1.0
        """
        return tighter(
            Deadline(_timing.monotonic() + self.seconds, self.name, self.scope, self.seconds), _deadline.get()
        )

    def _start(self) -> Deadline:
        deadline = self.deadline()
        if deadline.at <= _timing.monotonic():
            raise expired(deadline)
        return deadline


def _checked(value: float | timedelta, scope: str) -> float:
    if scope not in {"attempt", "total"}:
        msg = f"scope must be 'attempt' or 'total', got {scope!r}"
        raise ConfigurationError(msg)
    out = seconds(value, "seconds")
    if not out:
        msg = f"a timeout must be > 0 seconds, got {value!r}"
        raise ConfigurationError(msg)
    return out


def expired(deadline: Deadline) -> TimeoutExceeded:
    """Announce that *deadline* expired and return the error to raise."""
    if listeners := _events.active_listeners():
        _events.emit(TimeoutExpired(deadline.name, deadline.scope, deadline.length_s), listeners)
    return TimeoutExceeded(deadline.name, deadline.scope, deadline.length_s)


async def run_within(deadline: Deadline, awaitable: Awaitable[_T]) -> _T:
    """Await *awaitable* under *deadline* (published and enforced); for guards that compose timeouts."""
    token = _deadline.set(deadline)
    try:
        return await _bounded(awaitable, deadline.remaining(_timing.monotonic()))
    except _Expired:
        raise expired(deadline) from None
    finally:
        _deadline.reset(token)
