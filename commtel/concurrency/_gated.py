"""The driver both concurrency limiters share: take a slot (waiting if allowed), give it back.

The lock is held only while :class:`~commtel.concurrency._gate.GateCore` decides, never
while a caller waits or a call runs. A sync caller waits on a lock of its own, an async
caller on a future of its own; the one who frees a slot wakes the waiter the gate handed
it to, so sync threads and async tasks on any loop can share one limiter.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading

from datetime import timedelta

from .. import _events, _timing
from .._durations import seconds
from .._exceptions import ConfigurationError
from ._errors import ConcurrencyLimitExceeded
from ._events import ConcurrencyAdmitted, ConcurrencyRejected, ConcurrencyReleased, ConcurrencyWaited
from ._gate import FULL, QUEUED, GateCore, Waiter


__all__ = ["Gated", "check_limits"]


def check_limits(where: str, *, limit: int, max_wait_s: float | timedelta | None, max_waiting: int | None) -> float:
    """Raise :class:`ConfigurationError` for a bad limit or wait; return the wait in seconds (``inf``: no bound)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        msg = f"{where} must be an integer >= 1, got {limit!r}"
        raise ConfigurationError(msg)
    if max_waiting is not None and (
        isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0
    ):
        msg = f"max_waiting must be an integer >= 0 or None (no bound), got {max_waiting!r}"
        raise ConfigurationError(msg)
    wait = seconds(max_wait_s, "max_wait_s")
    return math.inf if wait is None else wait


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Gated:
    """A named gate of calls in flight with optional waiting; the base of Bulkhead and AdaptiveLimiter."""

    __slots__ = ("_admitted", "_core", "_lock", "_released", "kind", "max_wait_s", "name")

    def __init__(self, name: str, kind: str, limit: int, max_wait_s: float, max_waiting: int | None) -> None:
        self.name = name
        self.kind = kind
        self.max_wait_s = max_wait_s
        self._core = GateCore(limit, max_waiting)
        self._lock = threading.Lock()
        self._admitted = _events.Binding(ConcurrencyAdmitted(name))
        self._released = _events.Binding(ConcurrencyReleased(name))

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now.

        .. versionadded:: 0.1.0
        """
        return self._core.in_flight

    @property
    def waiting(self) -> int:
        """Callers queued for a slot now.

        .. versionadded:: 0.1.0
        """
        return len(self._core.waiters)

    def _enter(self) -> None:
        """Take a slot (sync), waiting up to ``max_wait_s``; raise :class:`ConcurrencyLimitExceeded` otherwise."""
        core = self._core
        with self._lock:
            entered = core.enter()
        if entered:
            self._admitted()
            return
        if self.max_wait_s <= 0:
            raise self._refused(0.0, "full")
        gate = threading.Lock()
        gate.acquire()
        waiter = Waiter(gate.release)
        with self._lock:
            state = core.enter_or_queue(waiter)
        if state is not QUEUED:
            self._entered_or_refused(state)
            return
        started = _timing.monotonic()
        if not gate.acquire(timeout=-1 if math.isinf(self.max_wait_s) else self.max_wait_s):
            with self._lock:
                abandoned = core.abandon(waiter)
            if abandoned:
                raise self._refused(_timing.monotonic() - started, "wait_timeout")
        self._waited(started)

    async def _aenter(self) -> None:
        """Take a slot (async), waiting up to ``max_wait_s``; a cancelled waiter leaves no slot behind."""
        core = self._core
        with self._lock:
            entered = core.enter()
        if entered:
            self._admitted()
            return
        if self.max_wait_s <= 0:
            raise self._refused(0.0, "full")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = Waiter(functools.partial(self._wake, loop, future))
        with self._lock:
            state = core.enter_or_queue(waiter)
        if state is not QUEUED:
            self._entered_or_refused(state)
            return
        started = _timing.monotonic()
        try:
            await asyncio.wait_for(future, None if math.isinf(self.max_wait_s) else self.max_wait_s)
        except asyncio.TimeoutError:
            with self._lock:
                abandoned = core.abandon(waiter)
            if abandoned:
                raise self._refused(_timing.monotonic() - started, "wait_timeout") from None
        except BaseException:
            with self._lock:
                abandoned = core.abandon(waiter)
            if not abandoned:  # the slot was handed to us just as we were cancelled: pass it on
                self._give_back()
            raise
        self._waited(started)

    def _entered_or_refused(self, state: str) -> None:
        if state is FULL:
            raise self._refused(0.0, "queue_full")
        self._admitted()

    def _wake(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _set(future)
            return
        try:
            loop.call_soon_threadsafe(_set, future)
        except RuntimeError:  # that loop is closed: nobody will take the slot, pass it on
            self._give_back()

    def _waited(self, started: float) -> None:
        if listeners := _events.active_listeners():
            _events.emit(ConcurrencyWaited(self.name, _timing.monotonic() - started), listeners)
        self._admitted()

    def _refused(self, waited_s: float, reason: str) -> ConcurrencyLimitExceeded:
        limit = self._core.limit
        if listeners := _events.active_listeners():
            _events.emit(ConcurrencyRejected(self.name, self.kind, limit, waited_s, reason), listeners)
        return ConcurrencyLimitExceeded(self.name, limit, kind=self.kind, waited_s=waited_s)

    def _leave(self) -> None:
        """Give a slot back and wake the waiter it goes to."""
        self._released()
        self._give_back()

    def _give_back(self) -> None:
        with self._lock:
            waiter = self._core.leave()
        if waiter is not None:
            waiter.wake()

    def _set_limit(self, limit: int) -> None:
        with self._lock:
            woken = self._core.set_limit(limit)
        for waiter in woken:
            waiter.wake()
