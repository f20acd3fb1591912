"""Inter-process file locks on the filelock library, with timeouts and a ``locked()`` form."""

from __future__ import annotations

import os

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType

import filelock

from typing_extensions import Self

from .. import _validation as check
from .._exceptions import CommtelError
from .._timing import asleep, monotonic


__all__ = ["FileLock", "LockTimeoutError"]

_POLL_S = 0.05


class LockTimeoutError(CommtelError, TimeoutError):
    """A file lock was not acquired within its timeout.

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        super().__init__(f"could not lock {path!r} within {timeout_s:g}s")


class FileLock:
    """A lock file that admits one holder at a time across processes (and threads).

    Use it as ``with lock:``, ``with lock.locked(timeout_s=...):`` or
    ``async with lock:``. The lock is re-entrant for the thread holding it;
    give every worker its own :class:`FileLock` object (several objects on one
    path exclude each other, also inside one process).

    Args:
        path: The lock file (created if missing; kept afterwards).
        timeout_s: Default seconds to wait; ``None`` waits forever, ``0`` tries once.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "path", "timeout_s")

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float | None = None) -> None:
        self.path = os.fspath(path)
        self.timeout_s = check.duration(timeout_s, "timeout_s", owner="FileLock", optional=True)
        self._lock = filelock.FileLock(self.path)

    def __repr__(self) -> str:
        return f"FileLock({self.path!r}, timeout_s={self.timeout_s!r})"

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock now."""
        return bool(self._lock.is_locked)

    def acquire(self, timeout_s: float | None = None) -> None:
        """Take the lock, waiting up to *timeout_s* (the default timeout when omitted).

        Raises:
            LockTimeoutError: Another holder kept it for the whole timeout.

        .. versionadded:: 0.1.0
        """
        wait = self.timeout_s if timeout_s is None else timeout_s
        try:
            self._lock.acquire(timeout=-1 if wait is None else wait, poll_interval=_POLL_S)
        except filelock.Timeout as exc:
            raise LockTimeoutError(self.path, -1 if wait is None else wait) from exc

    async def aacquire(self, timeout_s: float | None = None) -> None:
        """Async :meth:`acquire`: polls without blocking the event loop.

        .. versionadded:: 0.1.0
        """
        wait = self.timeout_s if timeout_s is None else timeout_s
        deadline = None if wait is None else monotonic() + wait
        while True:
            try:
                self._lock.acquire(blocking=False)
            except filelock.Timeout as exc:
                if deadline is not None and monotonic() >= deadline:
                    raise LockTimeoutError(self.path, -1 if wait is None else wait) from exc
                await asleep(_POLL_S)
            else:
                return

    def release(self) -> None:
        """Release one level of the lock.

        .. versionadded:: 0.1.0
        """
        self._lock.release()

    @contextmanager
    def locked(self, timeout_s: float | None = None) -> Iterator[Self]:
        """Hold the lock for the ``with`` block, waiting at most *timeout_s*.

        Raises:
            LockTimeoutError: The lock was not acquired in time.

        .. versionadded:: 0.1.0
        """
        self.acquire(timeout_s)
        try:
            yield self
        finally:
            self.release()

    @asynccontextmanager
    async def alocked(self, timeout_s: float | None = None) -> AsyncIterator[Self]:
        """Async :meth:`locked`.

        .. versionadded:: 0.1.0
        """
        await self.aacquire(timeout_s)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Self:
        await self.aacquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
