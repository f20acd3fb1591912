"""The sans-I/O concurrency gate: calls in flight, the limit, and the FIFO queue of waiting callers.

A slot freed while callers wait is handed straight to the oldest of them (the count in
flight does not drop), so a newcomer never overtakes a waiter. The gate never blocks,
sleeps or reads the clock: the drivers queue a :class:`Waiter`, block on it themselves
and wake the waiters the gate returns. The caller serialises access with one lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final


__all__ = ["ENTERED", "FULL", "QUEUED", "GateCore", "Waiter"]

ENTERED: Final = "entered"
QUEUED: Final = "queued"
FULL: Final = "full"


class Waiter:
    """One queued caller; *granted* is set (under the gate's lock) when a slot was handed to it."""

    __slots__ = ("granted", "wake")

    def __init__(self, wake: Callable[[], None]) -> None:
        self.granted = False
        self.wake = wake


class GateCore:
    """At most *limit* calls in flight; up to *max_waiting* callers queued (``None``: no bound).

    The limit may change at any time (:meth:`set_limit`); when it drops below the calls
    in flight, no one is admitted until enough of them left.
    """

    __slots__ = ("in_flight", "limit", "max_waiting", "waiters")

    def __init__(self, limit: int, max_waiting: int | None = None) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.in_flight = 0
        self.waiters: deque[Waiter] = deque()

    def enter(self) -> bool:
        """Take a slot now if one is free and nobody waits for it."""
        if self.in_flight < self.limit and not self.waiters:
            self.in_flight += 1
            return True
        return False

    def queue(self, waiter: Waiter) -> bool:
        """Queue *waiter* behind the others; ``False`` when the queue is full."""
        if self.max_waiting is not None and len(self.waiters) >= self.max_waiting:
            return False
        self.waiters.append(waiter)
        return True

    def enter_or_queue(self, waiter: Waiter) -> str:
        """:meth:`enter` if possible, else :meth:`queue`: :data:`ENTERED`, :data:`QUEUED` or :data:`FULL`."""
        if self.enter():
            return ENTERED
        return QUEUED if self.queue(waiter) else FULL

    def leave(self) -> Waiter | None:
        """A call left: its slot goes to the oldest waiter (returned, to be woken) when the limit allows."""
        self.in_flight -= 1
        if self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            waiter.granted = True
            self.in_flight += 1
            return waiter
        return None

    def abandon(self, waiter: Waiter) -> bool:
        """A waiter gave up (timeout, cancellation): ``True`` if it was still queued, ``False`` if already granted."""
        if waiter.granted:
            return False
        self.waiters.remove(waiter)
        return True

    def set_limit(self, limit: int) -> list[Waiter]:
        """Change the limit; the waiters a higher limit admits are returned, to be woken."""
        self.limit = limit
        woken: list[Waiter] = []
        while self.waiters and self.in_flight < limit:
            waiter = self.waiters.popleft()
            waiter.granted = True
            self.in_flight += 1
            woken.append(waiter)
        return woken
