"""The bulkhead: a fixed limit of calls in flight, sync and async, waiting at most ``max_wait_s``."""

from __future__ import annotations

import inspect

from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from .. import _events
from .._wrapping import WrapsCalls
from ._events import ConcurrencyLimitChanged
from ._gated import Gated, check_limits


__all__ = ["Bulkhead"]

_T = TypeVar("_T")


def _call_sync(bulkhead: Bulkhead, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    bulkhead._enter()
    try:
        return fn(*args, **kwargs)
    finally:
        bulkhead._leave()


async def _call_async(
    bulkhead: Bulkhead, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    await bulkhead._aenter()
    try:
        return await fn(*args, **kwargs)
    finally:
        bulkhead._leave()


class Bulkhead(Gated, WrapsCalls):
    """At most *max_concurrent* calls in flight; the others wait up to *max_wait_s*, then are refused.

    A slow dependency then ties up *max_concurrent* threads or tasks, not all of them.
    A refused call raises :class:`~commtel.errors.ConcurrencyLimitExceeded` without
    running. Waiters are served first come, first served; sync threads and async tasks
    (on any event loop) can share one bulkhead.

    Args:
        name: The ``limiter`` label of its metrics.
        max_concurrent: Calls allowed in flight at once.
        max_wait_s: How long a caller may wait for a slot (seconds or ``timedelta``);
            0 (the default) refuses at once, ``None`` waits as long as it takes.
        max_waiting: Callers allowed to wait at once (``None``: no bound); more are
            refused at once.

    Use it as a decorator (sync and async functions), a context manager, or call through it::

        bulkhead = Bulkhead("reports", max_concurrent=4, max_wait_s=0.5)
        bulkhead.call(render, report)
        await bulkhead.acall(arender, report)
        with bulkhead:
            render(report)

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = ()

    def __init__(
        self,
        name: str = "default",
        *,
        max_concurrent: int = 25,
        max_wait_s: float | timedelta | None = 0.0,
        max_waiting: int | None = None,
    ) -> None:
        wait = check_limits("max_concurrent", limit=max_concurrent, max_wait_s=max_wait_s, max_waiting=max_waiting)
        super().__init__(name, "bulkhead", max_concurrent, wait, max_waiting)
        if listeners := _events.active_listeners():
            _events.emit(ConcurrencyLimitChanged(name, "bulkhead", None, max_concurrent, "created"), listeners)

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validate the constructor's keyword *options* (all but the name) without building a bulkhead.

        Raises:
            TypeError: An option the constructor does not take.
            ConfigurationError: An invalid value.

        .. versionadded:: 0.1.0
        """
        bound = inspect.signature(cls).bind("name", **options)
        bound.apply_defaults()
        args = bound.arguments
        check_limits(
            "max_concurrent",
            limit=args["max_concurrent"],
            max_wait_s=args["max_wait_s"],
            max_waiting=args["max_waiting"],
        )

    def __repr__(self) -> str:
        return (
            f"Bulkhead({self.name!r}, max_concurrent={self.max_concurrent}, max_wait_s={self.max_wait_s:g}, "
            f"in_flight={self.in_flight}, waiting={self.waiting})"
        )

    @property
    def max_concurrent(self) -> int:
        """The limit of calls in flight.

        .. versionadded:: 0.1.0
        """
        return self._core.limit

    def acquire(self) -> None:
        """Take a slot, waiting up to ``max_wait_s``; pair with :meth:`release`.

        Raises:
            ConcurrencyLimitExceeded: No slot within ``max_wait_s``.

        .. versionadded:: 0.1.0
        """
        self._enter()

    async def aacquire(self) -> None:
        """:meth:`acquire` for async code (a cancelled waiter leaves no slot behind).

        .. versionadded:: 0.1.0
        """
        await self._aenter()

    def release(self) -> None:
        """Give back a slot taken by :meth:`acquire` or :meth:`aacquire`.

        .. versionadded:: 0.1.0
        """
        self._leave()

    def __enter__(self) -> None:
        self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()

    async def __aenter__(self) -> None:
        await self._aenter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._leave()
