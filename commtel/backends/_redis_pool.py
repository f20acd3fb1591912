"""Bounded sets of Redis connections that callers borrow one at a time and wait for when all are out.

redis-py's pool raises ``MaxConnectionsError`` to the caller past its size, which a
rate limiter would have to treat as "Redis down" (and fail open). These sets make
saturation back-pressure instead: past *limit* connections a caller waits, up to its
own deadline, for one to come back. :class:`SyncSlots` serves threads,
:class:`AsyncSlots` the tasks of one event loop (a connection belongs to the loop that
opened it). Connections are made unconnected and connect on first use.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from collections.abc import Callable
from time import monotonic  # real time: these are I/O deadlines, never a test's fake clock
from typing import Any

from redis.exceptions import TimeoutError  # noqa: A004 - redis-py's, not the builtin


__all__ = ["AsyncSlots", "DeadlinePassed", "PoolTimeout", "SyncSlots"]


class DeadlinePassed(TimeoutError):
    """A call's deadline passed before Redis could be asked: this process was too busy, not the server."""


class PoolTimeout(DeadlinePassed):
    """No connection came free before the call's deadline (saturation, not a failing server)."""


class SyncSlots:
    """At most *limit* connections for threads; ``take`` waits for one until a deadline.

    The common case (an idle connection) takes none of the locks: ``list.pop`` and
    ``list.append`` are atomic. Waiters sleep on a condition that ``give`` signals.
    """

    __slots__ = ("_cond", "_created", "_idle", "_make", "_waiters", "limit")

    def __init__(self, limit: int, make: Callable[[], Any]) -> None:
        self.limit = limit
        self._make = make
        self._idle: list[Any] = []
        self._created = 0
        self._waiters = 0
        self._cond = threading.Condition(threading.Lock())

    def take(self, deadline: float) -> Any:
        """A connection, waiting up to *deadline* (monotonic) when all are lent.

        Raises:
            PoolTimeout: None came free in time.
        """
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._created < self.limit:
                    conn = self._make()
                    self._created += 1
                    return conn
                remaining = deadline - monotonic()
                if remaining <= 0:
                    msg = f"all {self.limit} redis connections of this process stayed busy until the deadline"
                    raise PoolTimeout(msg)
                self._waiters += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiters -= 1

    def give(self, conn: Any) -> None:
        """Return *conn*; wake one waiter if any."""
        self._idle.append(conn)
        if self._waiters:
            with self._cond:
                self._cond.notify()

    def drop_idle(self) -> None:
        """Disconnect the idle connections (they reconnect, and re-resolve the server, on next use)."""
        for conn in list(self._idle):
            conn.disconnect()

    @property
    def idle(self) -> int:
        """Connections waiting to be borrowed."""
        return len(self._idle)

    @property
    def created(self) -> int:
        """Connections made so far (at most :attr:`limit`)."""
        return self._created


class AsyncSlots:
    """At most *limit* connections for the tasks of one event loop; ``take`` waits for one until a deadline.

    A returned connection goes straight to the longest waiting task (first come, first
    served), so a burst of tasks cannot starve one of them.
    """

    __slots__ = ("_created", "_idle", "_make", "_waiters", "limit")

    def __init__(self, limit: int, make: Callable[[], Any]) -> None:
        self.limit = limit
        self._make = make
        self._idle: list[Any] = []
        self._created = 0
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()

    async def take(self, deadline: float) -> Any:
        """A connection, waiting up to *deadline* (monotonic) when all are lent.

        Raises:
            PoolTimeout: None came free in time.
        """
        if self._idle:
            return self._idle.pop()
        if self._created < self.limit:
            conn = self._make()
            self._created += 1
            return conn
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(max(0.0, deadline - monotonic()), _expire, waiter, self.limit)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after a connection was handed over: pass it on rather than lose it.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give(waiter.result())
            raise
        finally:
            timer.cancel()

    def give(self, conn: Any) -> None:
        """Return *conn*: to the longest waiting task, else to the idle list."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def drop_idle(self) -> None:
        """Disconnect the idle connections (they reconnect, and re-resolve the server, on next use)."""
        for conn in list(self._idle):
            await conn.disconnect()

    @property
    def idle(self) -> int:
        """Connections waiting to be borrowed."""
        return len(self._idle)

    @property
    def created(self) -> int:
        """Connections made so far (at most :attr:`limit`)."""
        return self._created


def _expire(waiter: asyncio.Future[Any], limit: int) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout(f"all {limit} redis connections of this loop stayed busy until the deadline"))
