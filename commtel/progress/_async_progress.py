"""The progress tracker for asyncio: the same operations as the sync tracker, on an asyncio driver."""

from __future__ import annotations

import os

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import _validation as check
from .._timing import wall
from ..messages._owners import AsyncStoreOwner, coerce_async_store
from ..messages._retention import Retention
from ._progress import Callbacks, ProgressCallback, ProgressOps, ProgressState, ProgressStatus, UserId, kind_label


if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..backends._sql_store import AsyncTrackerStore


__all__ = ["AsyncProgressTracker"]


class AsyncProgressTracker(AsyncStoreOwner):
    """:class:`~commtel.ProgressTracker` for asyncio: database calls are coroutines on an asyncio driver.

    Runs :class:`~commtel.progress._progress.ProgressOps` on an
    :class:`~commtel.backends._sql_store.AsyncTrackerStore` (aiosqlite, psycopg
    async); callbacks, sync or async, are awaited in order after each update.

    Args:
        store: An :class:`~commtel.backends._sql_store.AsyncTrackerStore` (share an
            :class:`~commtel.messages.AsyncConversationTracker`'s), a database URL,
            a state directory, or an ``AsyncEngine``.
        kind: Default kind of task, the ``kind`` label of the task metrics.
        clock: Wall clock in epoch seconds.
        retention_s: Keep finished tasks this long, then purge them automatically.

    Raises:
        ConfigurationError: A bad setting, or the async driver is not installed.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_ops", "_owns_store", "callbacks", "store")

    def __init__(
        self,
        store: AsyncTrackerStore | str | os.PathLike[str] | AsyncEngine,
        *,
        kind: str = "task",
        clock: Callable[[], float] = wall,
        retention_s: float | timedelta | None = None,
    ) -> None:
        check.callable_(clock, "clock", owner="AsyncProgressTracker")
        kind = kind_label(kind)
        retention = Retention(retention_s)
        self.store, self._owns_store = coerce_async_store(store)
        self._ops = ProgressOps(self.store.sql, kind=kind, clock=clock, retention=retention)
        self.callbacks = Callbacks()

    @property
    def kind(self) -> str:
        """Default kind of task."""
        return self._ops.kind

    def __repr__(self) -> str:
        return f"AsyncProgressTracker({self.store!r}, kind={self.kind!r})"

    async def create_progress_session(self, task_id: str, user_id: UserId, *, kind: str | None = None) -> str:
        """See :meth:`ProgressTracker.create_progress_session`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.create_session(task_id, user_id, kind))

    async def get_progress(self, task_id: str, user_id: UserId) -> ProgressStatus | None:
        """See :meth:`ProgressTracker.get_progress`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.get(task_id, user_id))

    async def list_sessions(self, user_id: UserId) -> list[ProgressStatus]:
        """See :meth:`ProgressTracker.list_sessions`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.list_sessions(user_id))

    def register_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """See :meth:`ProgressTracker.register_callback`.

        .. versionadded:: 0.1.0
        """
        self.callbacks.register_callback(task_id, callback)

    def unregister_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """See :meth:`ProgressTracker.unregister_callback`.

        .. versionadded:: 0.1.0
        """
        self.callbacks.unregister_callback(task_id, callback)

    async def update_progress(
        self,
        task_id: str,
        current_step: str,
        progress_percent: float,
        details: Mapping[str, Any] | None = None,
        *,
        eta_s: float | None = None,
        user_id: UserId | None = None,
    ) -> bool:
        """See :meth:`ProgressTracker.update_progress`; callbacks are awaited in order.

        .. versionadded:: 0.1.0
        """
        op = self._ops.update(task_id, current_step, progress_percent, details=details, eta_s=eta_s, user_id=user_id)
        status = await self.store.run(op)
        await self.callbacks.acall(task_id, status)
        return status is not None

    async def finish_task(
        self,
        task_id: str,
        outcome: ProgressState | str = ProgressState.COMPLETED,
        *,
        error: str | None = None,
        user_id: UserId | None = None,
    ) -> ProgressStatus:
        """See :meth:`ProgressTracker.finish_task`.

        .. versionadded:: 0.1.0
        """
        status = await self.store.run(self._ops.finish(task_id, outcome, error, user_id))
        await self.callbacks.acall(task_id, status)
        return status

    async def purge(self, *, finished_before: datetime | float, batch: int = 1000) -> int:
        """See :meth:`ProgressTracker.purge`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.purge(finished_before, batch))
