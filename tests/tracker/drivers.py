"""Run one behaviour suite against the sync and the async trackers.

:class:`Blocking` drives an async tracker from plain test code: each coroutine
method runs to completion on the tracker's own event loop. The tests then call
``tracker.claim_next(...)`` the same way for both drivers, and the async one
really runs on AsyncTrackerStore (aiosqlite, psycopg async).
"""

from __future__ import annotations

import asyncio
import functools
import inspect

from typing import Any

from typing_extensions import Self

from commtel.messages import AsyncConversationTracker, ConversationTracker
from commtel.progress import AsyncProgressTracker, ProgressTracker


DRIVERS = ["sync", "async"]


class Blocking:
    """A sync view of an async tracker: coroutine methods run on one private event loop."""

    def __init__(self, make: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._target = self._loop.run_until_complete(self._make(make))

    @staticmethod
    async def _make(make: Any) -> Any:
        return make()  # inside the loop, so the store's locks and engine belong to it

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def run(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return run

    def close(self) -> None:
        self._loop.run_until_complete(self._target.aclose())
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def conversation_tracker(driver: str, store: Any, **kwargs: Any) -> Any:
    """A ConversationTracker (sync) or a Blocking AsyncConversationTracker (async) on *store*."""
    if driver == "sync":
        return ConversationTracker(store, **kwargs)
    return Blocking(lambda: AsyncConversationTracker(store, **kwargs))


def progress_tracker(driver: str, store: Any, **kwargs: Any) -> Any:
    """A ProgressTracker (sync) or a Blocking AsyncProgressTracker (async) on *store*."""
    if driver == "sync":
        return ProgressTracker(store, **kwargs)
    return Blocking(lambda: AsyncProgressTracker(store, **kwargs))
