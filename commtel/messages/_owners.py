"""Opening and closing the stores of the sync and async trackers.

A tracker made from a URL, path or engine opens its own store and closes it; a
tracker handed a store shares it and leaves it open.
"""

from __future__ import annotations

import os

from typing import TYPE_CHECKING

from typing_extensions import Self


if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..backends._sql_store import AsyncTrackerStore, TrackerStore


__all__ = ["AsyncStoreOwner", "StoreOwner", "coerce_async_store", "coerce_store"]


def coerce_store(store: TrackerStore | str | os.PathLike[str] | Engine) -> tuple[TrackerStore, bool]:
    """The store to use for *store*, and whether the caller made it (and so closes it)."""
    from ..backends._sql_store import TrackerStore

    return (store, False) if isinstance(store, TrackerStore) else (TrackerStore(store), True)


def coerce_async_store(
    store: AsyncTrackerStore | str | os.PathLike[str] | AsyncEngine,
) -> tuple[AsyncTrackerStore, bool]:
    """The async store to use for *store*, and whether the caller made it (and so closes it)."""
    from ..backends._sql_store import AsyncTrackerStore

    return (store, False) if isinstance(store, AsyncTrackerStore) else (AsyncTrackerStore(store), True)


class StoreOwner:
    """Closing for sync trackers: they release a store only if they opened it themselves."""

    __slots__ = ()
    store: TrackerStore
    _owns_store: bool

    def close(self) -> None:
        """Release the database connections of a store this tracker opened itself.

        .. versionadded:: 0.1.0
        """
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncStoreOwner:
    """Closing for async trackers: ``await tracker.aclose()`` or ``async with tracker:``."""

    __slots__ = ()
    store: AsyncTrackerStore
    _owns_store: bool

    async def aclose(self) -> None:
        """Release the database connections of a store this tracker opened itself.

        .. versionadded:: 0.1.0
        """
        if self._owns_store:
            await self.store.aclose()

    async def __aenter__(self) -> Self:
        await self.store.create_tables()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
