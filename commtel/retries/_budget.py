"""Retry budget: retries may be at most a fraction of calls over a sliding period.

A failing dependency otherwise turns every call into ``max_attempts`` calls (a retry
storm). Every call through a policy with a budget deposits one call; every retry must
withdraw one permit, granted while ``retries < min_retries + ratio x calls`` over the
last *period* (a ring of ``buckets`` slots). With *redis* given, the counts are shared by
every process using the same *name*: calls are counted locally and flushed at most once a
bucket, a retry decision is one atomic Lua round trip timed by the Redis server's clock.
When Redis fails, times out or is cooling down after a timeout, a retry decision is answered
by *fail_open*, held calls wait for the next round trip, and
:class:`~commtel.retries.RetryBudgetBackendFailed` is emitted.
"""

from __future__ import annotations

import logging
import threading

from datetime import timedelta
from typing import Any

from .. import _events, _timing
from .. import _validation as check
from .._exceptions import BackendError
from ..backends._redis import LuaScript, map_redis_errors, redis_caller
from ._events import RetryBudgetBackendFailed, RetryBudgetCreated


__all__ = ["RetryBudget"]

_log = logging.getLogger("commtel.retry")

# KEYS[1] = hash of counts; ARGV = pending calls, bucket width (s), buckets, ratio, min retries, want retry (0/1)
_SCRIPT = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local width = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local idx = math.floor(now / width)
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[1], 'c' .. idx, ARGV[1]) end
if ARGV[6] == '0' then
  redis.call('PEXPIRE', KEYS[1], math.ceil(width * n * 2000))
  return 1
end
local calls, retries = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local kind, at = string.sub(fields[i], 1, 1), tonumber(string.sub(fields[i], 2))
  if at <= idx - n then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif kind == 'c' then calls = calls + tonumber(fields[i + 1])
  else retries = retries + tonumber(fields[i + 1]) end
end
if retries < tonumber(ARGV[5]) + tonumber(ARGV[4]) * calls then
  redis.call('HINCRBY', KEYS[1], 'r' .. idx, 1)
  redis.call('PEXPIRE', KEYS[1], math.ceil(width * n * 2000))
  return 1
end
return 0
""")


class RetryBudget:
    """Caps retries at *ratio* of calls (plus *min_retries*) over a sliding *period*.

    Share one budget between the policies that call one dependency
    (``retry(..., budget=budget)``). A denied retry fails the call with
    :class:`~commtel.errors.RetryBudgetExhausted` and is counted in :attr:`denied`.

    Args:
        name: Label of the budget (and its Redis key).
        ratio: Retries allowed per call, e.g. 0.2 = one retry per five calls.
        period: Length of the sliding window (seconds or ``timedelta``).
        min_retries: Retries always allowed per period, so quiet services can retry.
        buckets: Resolution of the sliding window.
        redis: A Redis URL or redis-py client to share the budget across processes
            (any topology; see :class:`~commtel.ratelimit.RedisBackend`). Nothing connects
            at construction.
        fail_open: On a Redis error, allow the retry (default) instead of denying it. Each
            failure is counted in ``commtel_retry_budget_backend_errors_total``; the first of
            a streak is logged as a warning.
        redis_timeout: The longest one Redis call waits (for a free connection, then the reply).
        redis_cooldown: After a Redis timeout, decide by *fail_open* at once for this long.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_buckets",
        "_caller",
        "_calls",
        "_epochs",
        "_failing",
        "_key",
        "_last_flush",
        "_lock",
        "_pending",
        "_retries",
        "_width",
        "denied",
        "fail_open",
        "min_retries",
        "name",
        "period_s",
        "ratio",
    )

    def __init__(
        self,
        name: str = "default",
        *,
        ratio: float = 0.2,
        period: float | timedelta = 10.0,
        min_retries: int = 10,
        buckets: int = 10,
        redis: str | Any | None = None,
        fail_open: bool = True,
        redis_timeout: float | timedelta = 0.25,
        redis_cooldown: float | timedelta = 2.0,
    ) -> None:
        owner = "RetryBudget"
        period_s = check.duration(period, "period", owner=owner, positive=True)
        ratio = check.number(ratio, "ratio", owner=owner)
        min_retries = check.whole(min_retries, "min_retries", owner=owner, minimum=0)
        buckets = check.whole(buckets, "buckets", owner=owner)
        redis_timeout_s = check.duration(redis_timeout, "redis_timeout", owner=owner, positive=True)
        redis_cooldown_s = check.duration(redis_cooldown, "redis_cooldown", owner=owner, positive=True)
        self.name = check.text(name, "name", owner=owner)
        self.ratio = ratio
        self.period_s = period_s
        self.min_retries = min_retries
        self.fail_open = fail_open
        self.denied = 0
        self._buckets = buckets
        self._width = period_s / buckets
        self._epochs = [-1] * buckets
        self._calls = [0] * buckets
        self._retries = [0] * buckets
        self._lock = threading.Lock()
        self._pending = 0
        self._last_flush = _timing.monotonic()
        self._caller: Any = None
        self._failing = False
        self._key = [f"commtel:budget:{{{name}}}".encode()]
        if redis is not None:
            self._caller = redis_caller(
                redis,
                timeout_s=redis_timeout_s,
                cooldown_s=redis_cooldown_s,
            )
        if listeners := _events.active_listeners():
            _events.emit(RetryBudgetCreated(self.name, "memory" if redis is None else "redis"), listeners)

    def __repr__(self) -> str:
        shared = ", redis" if self._caller is not None else ""
        return f"RetryBudget({self.name!r}, ratio={self.ratio}, period={self.period_s}s, min_retries={self.min_retries}{shared})"

    def _slot(self, now: float) -> int:
        epoch = int(now / self._width)
        slot = epoch % self._buckets
        if self._epochs[slot] != epoch:
            self._epochs[slot] = epoch
            self._calls[slot] = self._retries[slot] = 0
        return slot

    def _window(self, now: float) -> tuple[int, int]:
        oldest = int(now / self._width) - self._buckets
        calls = retries = 0
        for slot, epoch in enumerate(self._epochs):
            if epoch > oldest:
                calls += self._calls[slot]
                retries += self._retries[slot]
        return calls, retries

    def record_call(self, now: float) -> None:
        """Deposit one call (every call through a budgeted policy does this once)."""
        with self._lock:
            if self._caller is None:
                self._calls[self._slot(now)] += 1
                return
            self._pending += 1
            due = now - self._last_flush >= self._width
        if due:
            self._shared(want_retry=False, now=now)

    def try_acquire(self, now: float) -> bool:
        """Withdraw one retry permit; ``False`` (and :attr:`denied` + 1) when the budget is spent."""
        if self._caller is not None:
            allowed = self._shared(want_retry=True, now=now)
        else:
            with self._lock:
                calls, retries = self._window(now)
                allowed = retries < self.min_retries + self.ratio * calls
                if allowed:
                    self._retries[self._slot(now)] += 1
        if not allowed:
            with self._lock:
                self.denied += 1
        return allowed

    def _shared(self, *, want_retry: bool, now: float) -> bool:
        with self._lock:
            pending, self._pending, self._last_flush = self._pending, 0, now
        args = [
            str(n).encode()
            for n in (pending, repr(self._width), self._buckets, repr(self.ratio), self.min_retries, int(want_retry))
        ]
        try:
            with map_redis_errors(f"retry budget {self.name!r}"):
                allowed = bool(self._caller.script(_SCRIPT, self._key, args))
        except BackendError as error:
            with self._lock:
                self._pending += pending
            self._failed(error)
            return self.fail_open
        if self._failing:
            self._failing = False
            _log.warning("retry budget %r: redis reachable again", self.name)
        return allowed

    def _failed(self, error: BackendError) -> None:
        """Log the first failure of a streak and emit :class:`RetryBudgetBackendFailed`."""
        cause = error.__cause__ or error
        if not self._failing:
            self._failing = True
            _log.warning(
                "retry budget %r: redis failed (%s: %s); %s retries until it answers",
                self.name,
                type(cause).__name__,
                cause,
                "allowing" if self.fail_open else "denying",
            )
        if listeners := _events.active_listeners():
            _events.emit(RetryBudgetBackendFailed(self.name, "redis", type(cause).__name__, self.fail_open), listeners)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Calls, retries and denials in the current window (local counts only).

        .. versionadded:: 0.1.0
        """
        with self._lock:
            calls, retries = self._window(_timing.monotonic() if now is None else now)
        return {"name": self.name, "calls": calls, "retries": retries, "denied": self.denied}
