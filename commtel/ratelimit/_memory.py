"""In-process rate-limiter state: thread-safe, bounded, no background thread.

Idle keys expire without a timer. Each scope keeps two generations of key
state; a key touched in the current generation stays there, a key found in the
previous one moves back, and every ``horizon + 1`` seconds the previous
generation is dropped whole. A key that reaches the dropped generation has not
been touched for at least a full horizon, so its state already equals a fresh
key's: expiry never changes a decision, and memory holds only keys touched in
the last two horizons.
"""

# ruff: noqa: FBT003 - RateLimitDecision(True/False, ...) and commit flags are positional on the hot path
from __future__ import annotations

import math
import threading

from collections.abc import Sequence
from typing import Any

from ._core import Quota, RateLimitDecision, merge
from ._store import Plan, Scope


__all__ = ["MemoryBackend", "MemoryStore"]

# Slack added to a quota's horizon before idle keys are dropped (absorbs callers whose
# clock readings reach the lock slightly out of order).
_HORIZON_SLACK_S = 1.0
# Expired server-feedback blocks are swept when this many are held.
_BLOCK_SWEEP_AT = 1024


class _Table:
    """Key states of one scope, in two generations (see the module docstring)."""

    __slots__ = ("current", "period", "previous", "quota", "rotate_at")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.period = quota.horizon_s + _HORIZON_SLACK_S
        self.current: dict[str, Any] = {}
        self.previous: dict[str, Any] = {}
        self.rotate_at = -math.inf

    def rotate(self, now: float) -> None:
        """Start a generation; drop the previous one (idle for at least a horizon)."""
        # If a whole period passed since the last rotation, the current generation is idle too.
        self.previous = self.current if now < self.rotate_at + self.period else {}
        self.current = {}
        self.rotate_at = now + self.period

    def adopt(self, key: str) -> Any:
        """Move *key*'s state from the previous generation to the current one."""
        state = self.previous.pop(key, None)
        if state is not None:
            self.current[key] = state
        return state

    def decide(self, key: str, now: float, cost: int, commit: bool) -> RateLimitDecision:  # noqa: FBT001 - hot path
        """Decide for *key* in this scope (the caller holds the store's lock)."""
        if now >= self.rotate_at:
            self.rotate(now)
        state = self.current.get(key)
        if state is None and self.previous:
            state = self.adopt(key)
        new, decision = self.quota.decide(state, now, cost, commit)
        if new is not state:
            self.current[key] = new
        return decision

    def forget(self, key: str) -> None:
        """Drop *key* from both generations."""
        self.current.pop(key, None)
        self.previous.pop(key, None)

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)


def _decide_all(tables: tuple[_Table, ...], key: str, now: float, cost: int, commit: bool) -> RateLimitDecision:  # noqa: FBT001
    """Peek every scope; only if all admit, commit them all (the caller holds the lock)."""
    decision = tables[0].decide(key, now, cost, False)
    for table in tables[1:]:
        decision = merge(decision, table.decide(key, now, cost, False))
    if not decision.allowed or not commit:
        return decision
    decision = tables[0].decide(key, now, cost, True)
    for table in tables[1:]:
        decision = merge(decision, table.decide(key, now, cost, True))
    return decision


class MemoryStore:
    """State of one limiter's keys in this process (see :class:`MemoryBackend`).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_blocks", "_latest", "_lock", "_tables", "limiter")

    backend = "memory"

    def __init__(self, limiter: str) -> None:
        self.limiter = limiter
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, tuple[Any, ...]], _Table] = {}
        self._blocks: dict[str, float] = {}
        self._latest = -math.inf

    def __repr__(self) -> str:
        return f"MemoryStore({self.limiter!r}, keys={len(self)})"

    def __len__(self) -> int:
        """Number of key states held (all scopes, both generations)."""
        with self._lock:
            return sum(len(table) for table in self._tables.values())

    def plan(self, scopes: Sequence[Scope]) -> Plan:
        """Bind each scope to its table (created on first use)."""
        tables = []
        with self._lock:
            for name, quota in scopes:
                table = self._tables.get((name, quota.limits))
                if table is None:
                    table = self._tables[name, quota.limits] = _Table(quota)
                tables.append(table)
        return Plan(scopes, tables)

    def decide(self, plan: Plan, key: str, now: float, cost: int, commit: bool = True) -> RateLimitDecision:  # noqa: FBT001, FBT002 - hot path
        """Decide under the lock; all scopes admit and consume, or none consumes."""
        # acquire/try/finally: measurably cheaper than ``with`` on this hot path.
        lock = self._lock
        lock.acquire()
        try:
            # Callers read the clock before taking the lock, so readings can arrive out of
            # order; deciding with the latest time seen keeps every scope's view monotonic
            # (an older reading must not re-admit into a window a newer one has moved past).
            if now < self._latest:
                now = self._latest
            else:
                self._latest = now
            if self._blocks:
                until = self._blocks.get(key)
                if until is not None:
                    if until > now:
                        return RateLimitDecision(False, until - now, 0, plan.capacity, until - now)
                    del self._blocks[key]
            table: _Table | None = plan.single
            if table is not None:
                # _Table.decide inlined: one call less on the single-scope hot path.
                if now >= table.rotate_at:
                    table.rotate(now)
                current = table.current
                state = current.get(key)
                if state is None and table.previous:
                    state = table.adopt(key)
                new, decision = table.quota.decide(state, now, cost, commit)
                if new is not state:
                    current[key] = new
                return decision
            return _decide_all(plan.handles, key, now, cost, commit)
        finally:
            lock.release()

    async def adecide(self, plan: Plan, key: str, now: float, cost: int, *, commit: bool = True) -> RateLimitDecision:
        """Same as :meth:`decide`: nothing to await in memory."""
        return self.decide(plan, key, now, cost, commit=commit)

    def block(self, key: str, now: float, delay_s: float) -> None:
        """Reject *key* until ``now + delay_s`` (an existing longer block stays)."""
        until = now + delay_s
        with self._lock:
            if len(self._blocks) >= _BLOCK_SWEEP_AT:
                self._blocks = {k: u for k, u in self._blocks.items() if u > now}
            if until > self._blocks.get(key, -math.inf):
                self._blocks[key] = until

    async def ablock(self, key: str, now: float, delay_s: float) -> None:
        """Same as :meth:`block`."""
        self.block(key, now, delay_s)

    def reset(self, key: str) -> None:
        """Forget *key* in every scope, and its block."""
        with self._lock:
            for table in self._tables.values():
                table.forget(key)
            self._blocks.pop(key, None)


class MemoryBackend:
    """Keep limiter state in this process; limiters bound under the same name share it.

    Thread-safe (one lock per limiter, held only for the decision itself), with
    no thread per key or per limiter: idle keys expire as decisions happen.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "_stores")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, MemoryStore] = {}

    def __repr__(self) -> str:
        return f"MemoryBackend(limiters={sorted(self._stores)})"

    def bind(self, limiter: str) -> MemoryStore:
        """The store of the limiter named *limiter* (created on first use)."""
        with self._lock:
            store = self._stores.get(limiter)
            if store is None:
                store = self._stores[limiter] = MemoryStore(limiter)
            return store
