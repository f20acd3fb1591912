"""The seam between a :class:`~commtel.RateLimiter` and where its state lives.

A backend (:class:`~commtel.backends.MemoryBackend`, :class:`~commtel.backends.RedisBackend`)
is bound once per limiter name into a :class:`RateLimitStore`. The limiter asks the
store for a :class:`Plan` per set of scopes once, then calls :meth:`RateLimitStore.decide`
with that plan on every request, so per-call work is only the decision itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ._core import Quota, RateLimitDecision


__all__ = ["Plan", "RateLimitBackend", "RateLimitStore", "Scope"]

#: A named quota: the scope name separates budgets of one key (``"p:mastodon"``, ``"e::media"``).
Scope = tuple[str, Quota]


class Plan:
    """The scopes one request must satisfy, prepared by a store for fast repeated decisions.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("capacity", "handles", "scopes", "single")

    def __init__(self, scopes: Sequence[Scope], handles: Sequence[Any]) -> None:
        self.scopes = tuple(scopes)
        #: Store-specific handle per scope (a table, Redis key suffixes …), in scope order.
        self.handles = tuple(handles)
        #: The only handle when there is one scope (the fast path), else ``None``.
        self.single = self.handles[0] if len(self.handles) == 1 else None
        #: The largest cost a request may have under every scope.
        self.capacity = min(quota.capacity for _, quota in self.scopes)

    def __repr__(self) -> str:
        return f"Plan({', '.join(name or '<key>' for name, _ in self.scopes)})"


class RateLimitStore(Protocol):
    """State of one limiter's keys; every decision is atomic across the plan's scopes.

    .. versionadded:: 0.1.0
    """

    #: Backend label for ``commtel_ratelimit_backend_errors_total`` (``memory``, ``redis``).
    backend: str

    def plan(self, scopes: Sequence[Scope]) -> Plan:
        """Prepare *scopes* (all of which a request must satisfy) for :meth:`decide`."""
        ...

    def decide(self, plan: Plan, key: str, now: float, cost: int, *, commit: bool = True) -> RateLimitDecision:
        """Admit *cost* units for *key* under every scope of *plan*, or none; ``commit=False`` peeks."""
        ...

    async def adecide(self, plan: Plan, key: str, now: float, cost: int, *, commit: bool = True) -> RateLimitDecision:
        """:meth:`decide` for asyncio callers."""
        ...

    def block(self, key: str, now: float, delay_s: float) -> None:
        """Reject every request for *key* until *delay_s* after *now* (server feedback)."""
        ...

    async def ablock(self, key: str, now: float, delay_s: float) -> None:
        """:meth:`block` for asyncio callers."""
        ...

    def reset(self, key: str) -> None:
        """Forget all state of *key* (every scope, and any block)."""
        ...


class RateLimitBackend(Protocol):
    """Something that stores limiter state: bound once per limiter name.

    .. versionadded:: 0.1.0
    """

    def bind(self, limiter: str) -> RateLimitStore:
        """The store for the limiter called *limiter* (same name, same state)."""
        ...
