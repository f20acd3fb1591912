"""The conversation tracker for asyncio: the same operations as the sync tracker, on an asyncio driver.

:class:`AsyncConversationTracker` runs :class:`~commtel.messages._tracker.ConversationOps`
on an :class:`~commtel.backends._sql_store.AsyncTrackerStore` (aiosqlite, psycopg
async), so an event loop never blocks on the database and both trackers share
one set of rules, queries and events. Sync and async workers can share a database.
"""

from __future__ import annotations

import os

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import _validation as check
from .._timing import wall
from ._headers import MessageHeaders
from ._owners import AsyncStoreOwner, coerce_async_store
from ._retention import Retention, positive_seconds
from ._tracker import Claim, ConversationOps, MessageState, ThreadEntry, TrackedMessage, error_text


if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..backends._sql_store import AsyncTrackerStore


__all__ = ["AsyncConversationTracker"]


class AsyncConversationTracker(AsyncStoreOwner):
    """:class:`~commtel.ConversationTracker` for asyncio: every method is a coroutine.

    Args:
        store: An :class:`~commtel.backends._sql_store.AsyncTrackerStore`, a database
            URL (``sqlite:///state.db``, ``postgresql+psycopg://...``; the async
            driver is chosen for you), a state directory, or an ``AsyncEngine``.
        lease_s: Default lease length of a claim (seconds or ``timedelta``).
        clock: Wall clock in epoch seconds.
        retention_s: Keep completed and failed messages this long, then purge
            them automatically (see :class:`~commtel.ConversationTracker`).

    Tables are created on first use (or on ``async with``). Use one tracker per event loop.

    Raises:
        ConfigurationError: A bad setting, or the async driver is not installed.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_ops", "_owns_store", "store")

    def __init__(
        self,
        store: AsyncTrackerStore | str | os.PathLike[str] | AsyncEngine,
        *,
        lease_s: float | timedelta = 30.0,
        clock: Callable[[], float] = wall,
        retention_s: float | timedelta | None = None,
    ) -> None:
        retention = Retention(retention_s)
        lease = positive_seconds("lease_s", lease_s)
        check.callable_(clock, "clock", owner="AsyncConversationTracker")
        self.store, self._owns_store = coerce_async_store(store)
        self._ops = ConversationOps(self.store.sql, lease_s=lease, clock=clock, retention=retention)

    @property
    def lease_s(self) -> float:
        """Default lease length of a claim, in seconds."""
        return self._ops.lease_s

    def __repr__(self) -> str:
        return f"AsyncConversationTracker({self.store!r}, lease_s={self.lease_s})"

    async def track_message(
        self,
        conversation_id: str,
        message_id: str,
        in_reply_to: str | None = None,
        *,
        platform: str = "unknown",
        subject: str | None = None,
    ) -> TrackedMessage:
        """See :meth:`ConversationTracker.track_message`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(
            self._ops.track_message(conversation_id, message_id, in_reply_to, platform=platform, subject=subject)
        )

    async def track_headers(self, *headers: MessageHeaders) -> list[TrackedMessage]:
        """See :meth:`ConversationTracker.track_headers`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.track_headers(headers))

    async def get_message(self, conversation_id: str, message_id: str) -> TrackedMessage | None:
        """See :meth:`ConversationTracker.get_message`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.get_message(conversation_id, message_id))

    async def get_message_state(self, conversation_id: str, message_id: str) -> MessageState | None:
        """See :meth:`ConversationTracker.get_message_state`.

        .. versionadded:: 0.1.0
        """
        message = await self.get_message(conversation_id, message_id)
        return None if message is None else message.state

    async def get_pending_messages(
        self, conversation_id: str | None = None, *, limit: int | None = None
    ) -> list[TrackedMessage]:
        """See :meth:`ConversationTracker.get_pending_messages`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(
            self._ops.list_messages(conversation_id=conversation_id, state=MessageState.PENDING, limit=limit)
        )

    async def get_thread(self, conversation_id: str) -> list[ThreadEntry]:
        """See :meth:`ConversationTracker.get_thread`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.get_thread(conversation_id))

    async def counts(self) -> dict[MessageState, int]:
        """See :meth:`ConversationTracker.counts`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.counts())

    async def set_message_state(
        self, conversation_id: str, message_id: str, state: MessageState | str, *, error: str | None = None
    ) -> TrackedMessage:
        """See :meth:`ConversationTracker.set_message_state`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.set_message_state(conversation_id, message_id, state, error))

    async def retry(self, conversation_id: str, message_id: str) -> TrackedMessage:
        """See :meth:`ConversationTracker.retry`.

        .. versionadded:: 0.1.0
        """
        return await self.set_message_state(conversation_id, message_id, MessageState.PENDING)

    async def claim_next(
        self,
        worker_id: str,
        *,
        lease_s: float | timedelta | None = None,
        conversation_id: str | None = None,
        platform: str | None = None,
    ) -> Claim | None:
        """See :meth:`ConversationTracker.claim_next`.

        .. versionadded:: 0.1.0
        """
        claims = await self.claim_batch(
            worker_id, 1, lease_s=lease_s, conversation_id=conversation_id, platform=platform
        )
        return claims[0] if claims else None

    async def claim_batch(
        self,
        worker_id: str,
        limit: int,
        *,
        lease_s: float | timedelta | None = None,
        conversation_id: str | None = None,
        platform: str | None = None,
    ) -> list[Claim]:
        """See :meth:`ConversationTracker.claim_batch`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(
            self._ops.claim_batch(worker_id, limit, lease_s=lease_s, conversation_id=conversation_id, platform=platform)
        )

    async def renew(self, claim: Claim, *, lease_s: float | timedelta | None = None) -> Claim:
        """See :meth:`ConversationTracker.renew`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.renew(claim, lease_s))

    async def complete(self, claim: Claim) -> TrackedMessage:
        """See :meth:`ConversationTracker.complete`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.finish(claim, MessageState.COMPLETED, None))

    async def fail(self, claim: Claim, error: str | BaseException | None = None) -> TrackedMessage:
        """See :meth:`ConversationTracker.fail`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.finish(claim, MessageState.FAILED, error_text(error)))

    async def release(self, claim: Claim) -> TrackedMessage:
        """See :meth:`ConversationTracker.release`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.finish(claim, MessageState.PENDING, None))

    async def purge(self, *, completed_before: datetime | float, batch: int = 1000) -> int:
        """See :meth:`ConversationTracker.purge`.

        .. versionadded:: 0.1.0
        """
        return await self.store.run(self._ops.purge(completed_before, batch))
