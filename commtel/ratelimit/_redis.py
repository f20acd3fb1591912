"""Rate-limiter state in Redis: one atomic Lua script per decision, shared by every process.

The script is the same state machine as :mod:`commtel.ratelimit._core`
(GCRA for the token bucket, a sorted set of admitted units for exact sliding
windows), evaluated for every scope of the request and committed only if all
admit. Each plan (set of scopes) has its own script carrying its constants, sent
as a pre-packed ``EVALSHA`` (``EVAL`` on ``NOSCRIPT``) over held connections (see
:class:`~commtel.backends._redis.ScriptRunner`). It reads Redis ``TIME`` so client clocks
do not matter, sets a TTL of one horizon on every key it writes, and keeps all
keys of one limiter key under one hash tag (``commtel:rl:{limiter:key}...``) so a
Redis Cluster sees one slot. When Redis fails or times out, the store answers
by its fail-open/fail-closed policy and emits :class:`RateLimitBackendFailed`.
"""

# ruff: noqa: FBT003 - RateLimitDecision(True/False, ...) and commit flags are positional on the hot path
from __future__ import annotations

import logging
import math

from collections.abc import Sequence
from typing import Any, cast

from .. import _events
from .._exceptions import BackendError, ConfigurationError
from ..backends._redis import (
    LuaScript,
    ScriptRunner,
    arun_script,
    async_redis_client,
    backend_error,
    hash_tagged,
    map_redis_errors,
    redis_client,
    redis_errors,
)
from ._core import Quota, RateLimitDecision, SlidingWindow, TokenBucket
from ._events import RateLimitBackendFailed
from ._store import Plan, Scope


__all__ = ["RedisBackend", "RedisStore"]

_log = logging.getLogger("commtel.ratelimit")

# Retry hint of a fail-closed decision while Redis is unreachable.
_FAIL_CLOSED_RETRY_S = 1.0

# Both scripts start here: now from ARGV[1], or ('') from Redis TIME counted from 2020-09-13
# (1.6e9) so doubles keep ~1e-8 s of precision.
_NOW = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1600000000) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""

# Every plan gets its own script: this body behind "local P = {...}" holding the plan's constants
# (capacity, bucket count, scope count, then per scope: ttl_ms, rate or false, burst, interval,
# tau, window count, (limit, seconds)* sorted by (seconds, limit)); parsing them from ARGV cost
# more than the round trip's own work on the server. KEYS: the block key, the GCRA key of every
# scope with a bucket (a string: its theoretical arrival time), the sorted set of every scope
# with windows (one member per admitted unit, scored by its time and named "time:n", n counting
# the units of that time). ARGV: now ('' = Redis TIME), cost, commit ('1' or '0'). The answer is
# one string "allowed retry remaining limit reset" (one string.format: number-to-string
# conversions are what a reply costs). Numbers go to redis.call as numbers: Redis converts them
# with %.17g (7.2+: shortest round-trip form), exactly and cheaper than Lua strings. Mirrors
# _ratelimit_core exactly (same float operations, same merge order).
_DECIDE = (
    _NOW
    + """local cost, nb = tonumber(ARGV[2]), P[2]
local got = redis.call('MGET', unpack(KEYS, 1, nb + 1))
if got[1] and tonumber(got[1]) > now then
  local wait = tonumber(got[1]) - now
  return string.format('0 %.17g 0 %d %.17g', wait, P[1], wait)
end
local allowed, retry, remaining, limit, reset, first = true, 0, 0, 0, 0, true
local function merge(a, r, rem, lim, rs)
  if first or (allowed and not a) or (allowed == a and rem < remaining) then remaining = rem; limit = lim end
  allowed = allowed and a
  if r > retry then retry = r end
  if first or rs > reset then reset = rs end
  first = false
end
-- Commits, flat: key, ttl, tat (a bucket) or key, ttl, stamp, whether units already hold stamp.
local bw, zw, kb, kz, p = {}, {}, 1, nb + 1, 4
for _ = 1, P[3] do
  local ttl, rate, nwin = P[p], P[p + 1], P[p + 5]
  if rate then
    kb = kb + 1
    local burst, interval, tau = P[p + 2], P[p + 3], P[p + 4]
    local tat = got[kb] and tonumber(got[kb]) or now
    if tat < now then tat = now end
    local new = tat + cost * interval
    local ahead = new - now
    if ahead > tau + 1e-9 then
      local rem = burst - (tat - now) * rate + 1e-9
      if rem < 0 then rem = 0 else rem = math.floor(rem) end
      merge(false, ahead - tau, rem, burst, tat - now)
    else
      local rem = burst - ahead * rate + 1e-9
      if rem >= 0 then rem = math.floor(rem) else rem = math.ceil(rem) end
      merge(true, 0, rem, burst, ahead)
      bw[#bw + 1] = KEYS[kb]; bw[#bw + 1] = ttl; bw[#bw + 1] = new
    end
  end
  p = p + 6
  if nwin > 0 then
    kz = kz + 1
    local z = KEYS[kz]
    local longest = P[p + 2 * nwin - 1]
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now - longest)
    local size = redis.call('ZCARD', z)
    local w_ok, w_retry, w_rem, w_lim, r_rem, r_lim = true, 0, -1, -1, -1, -1
    for _ = 1, nwin do
      local wl, ws = P[p], P[p + 1]
      p = p + 2
      local used = size
      if ws ~= longest then used = redis.call('ZCOUNT', z, string.format('(%.17g', now - ws), '+inf') end
      local free = wl - used - cost
      if free < 0 then
        w_ok = false
        local kth = redis.call('ZRANGEBYSCORE', z, string.format('(%.17g', now - ws), '+inf', 'WITHSCORES',
                               'LIMIT', -free - 1, 1)
        local wait = math.huge
        if kth[2] then wait = tonumber(kth[2]) + ws - now end
        if wait > w_retry then w_retry = wait end
        free = math.max(0, free + cost)
        if r_lim < 0 or free < r_rem then r_rem = free; r_lim = wl end
      elseif w_lim < 0 or free < w_rem then w_rem = free; w_lim = wl end
    end
    if not w_ok then w_rem = r_rem; w_lim = r_lim end
    -- The newest unit matters on a refusal (reset) or when it is not older than now (the new
    -- units then take its time); a ZCOUNT rules that out without fetching it in the common case.
    local newest
    if (not w_ok and size > 0) or (w_ok and redis.call('ZCOUNT', z, now, '+inf') > 0) then
      newest = tonumber(redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')[2])
    end
    if w_ok then
      local stamp = now
      if newest and newest > now then stamp = newest end
      merge(true, 0, w_rem, w_lim, stamp + longest - now)
      zw[#zw + 1] = z; zw[#zw + 1] = ttl; zw[#zw + 1] = stamp; zw[#zw + 1] = newest == stamp
    else
      local rs = 0
      if newest then rs = newest + longest - now end
      merge(false, w_retry, w_rem, w_lim, rs)
    end
  end
end
if allowed and ARGV[3] == '1' then
  for i = 1, #bw, 3 do
    redis.call('SET', bw[i], bw[i + 2], 'PX', bw[i + 1])
  end
  for i = 1, #zw, 4 do
    local z, stamp, n = zw[i], zw[i + 2], 0
    -- Units of one time are named time:1, time:2 ... and always expire together, so the
    -- numbering goes on from the units already at that time (only when the newest are).
    if zw[i + 3] then n = redis.call('ZCOUNT', z, stamp, stamp) end
    local name = string.format('%.17g:', stamp)
    if cost == 1 then
      redis.call('ZADD', z, stamp, name .. (n + 1))
    else
      local args = {}
      for u = n + 1, n + cost do
        args[#args + 1] = stamp
        args[#args + 1] = name .. u
        if #args >= 1000 then redis.call('ZADD', z, unpack(args)); args = {} end
      end
      if #args > 0 then redis.call('ZADD', z, unpack(args)) end
    end
    redis.call('PEXPIRE', z, zw[i + 1])
  end
end
return string.format('%d %.17g %d %d %.17g', allowed and 1 or 0, retry, remaining, limit, reset)
"""
)

# KEYS: block key. ARGV: now ('' = Redis TIME), delay seconds. Keeps the later of two blocks.
_BLOCK = LuaScript(
    _NOW
    + """local delay = tonumber(ARGV[2])
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= now + delay then return 0 end
redis.call('SET', KEYS[1], string.format('%.17g', now + delay), 'PX', math.ceil(delay * 1000) + 1)
return 1
"""
)


def _lua(value: float | bool) -> str:  # noqa: FBT001 - a literal
    """*value* as a Lua literal that parses to the same double (``repr`` round-trips)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "math.huge" if value == math.inf else repr(value)


def _scope_constants(quota: Quota) -> list[float | bool]:
    bucket = next((limit for limit in quota.limits if isinstance(limit, TokenBucket)), None)
    windows = sorted(
        (limit for limit in quota.limits if isinstance(limit, SlidingWindow)), key=lambda w: (w.window_s, w.limit)
    )
    out: list[float | bool] = [math.ceil(quota.horizon_s * 1000) + 1000]
    if bucket is None:
        out += [False, 0, 0.0, 0.0]
    else:
        rate = float(bucket.rate)
        interval = 1.0 / rate
        out += [rate, bucket.burst, interval, bucket.burst * interval]
    out.append(len(windows))
    for window in windows:
        out += [window.limit, float(window.window_s)]
    return out


def _has(quota: Quota, kind: type) -> bool:
    return any(isinstance(limit, kind) for limit in quota.limits)


class _RedisPlan(Plan):
    """The key suffixes (block key first) and the decision script of some scopes."""

    __slots__ = ("script", "suffixes")

    def __init__(self, scopes: Sequence[Scope]) -> None:
        super().__init__(scopes, [name for name, _ in scopes])
        buckets = [f":{name}:b".encode() for name, quota in scopes if _has(quota, TokenBucket)]
        windows = [f":{name}:w".encode() for name, quota in scopes if _has(quota, SlidingWindow)]
        self.suffixes = (b":blk", *buckets, *windows)
        constants: list[float | bool] = [self.capacity, len(buckets), len(self.scopes)]
        for _, quota in scopes:
            constants += _scope_constants(quota)
        self.script = LuaScript(f"local P = {{{', '.join(map(_lua, constants))}}}\n{_DECIDE}")


class RedisStore:
    """One limiter's keys in Redis (see :class:`RedisBackend`).

    .. versionadded:: 0.1.0
    """

    backend = "redis"

    def __init__(self, backend: RedisBackend, limiter: str) -> None:
        self.limiter = limiter
        self._backend = backend
        self._scopes: set[str] = set()
        self._failing = False

    def __repr__(self) -> str:
        return f"RedisStore({self.limiter!r})"

    def _base(self, key: str) -> str:
        return hash_tagged(self._backend.prefix, f"{self.limiter}:{key}")

    def plan(self, scopes: Sequence[Scope]) -> Plan:
        """Prepare the key suffixes and the decision script of *scopes*."""
        self._scopes.update(name for name, _ in scopes)
        return _RedisPlan(scopes)

    def _call(self, plan: Plan, key: str, now: float, cost: int, commit: bool) -> tuple[list[bytes], list[bytes]]:  # noqa: FBT001 - private
        base = self._base(key).encode()
        clock = b"" if self._backend.server_time else repr(now).encode()
        return (
            [base + suffix for suffix in cast("_RedisPlan", plan).suffixes],
            [clock, b"%d" % cost, b"1" if commit else b"0"],
        )

    def _answer(self, reply: bytes | str) -> RateLimitDecision:
        if self._failing:
            self._failing = False
            _log.warning("rate limiter %r: redis reachable again", self.limiter)
        allowed, retry, remaining, limit, reset = reply.split()
        return RateLimitDecision(allowed in (b"1", "1"), float(retry), int(remaining), int(limit), float(reset))

    def _failed(self, error: BackendError) -> None:
        """Log the first failure of a streak and emit :class:`RateLimitBackendFailed`."""
        if not self._failing:
            self._failing = True
            _log.warning(
                "rate limiter %r: %s; failing %s", self.limiter, error, "open" if self._backend.fail_open else "closed"
            )
        if listeners := _events.active_listeners():
            cause = type(error.__cause__).__name__ if error.__cause__ is not None else type(error).__name__
            _events.emit(RateLimitBackendFailed(self.limiter, "redis", cause, self._backend.fail_open), listeners)

    def _fallback(self, error: BaseException, plan: Plan) -> RateLimitDecision:
        """The fail-open (admit) or fail-closed (reject for a second) decision."""
        self._failed(backend_error("rate-limit decision", error))
        if self._backend.fail_open:
            return RateLimitDecision(True, 0.0, 0, plan.capacity, 0.0)
        return RateLimitDecision(False, _FAIL_CLOSED_RETRY_S, 0, plan.capacity, _FAIL_CLOSED_RETRY_S)

    def decide(self, plan: Plan, key: str, now: float, cost: int, commit: bool = True) -> RateLimitDecision:  # noqa: FBT001, FBT002 - same signature as the memory store
        """One ``EVALSHA`` round trip; on failure, the fail-open/closed answer."""
        keys, args = self._call(plan, key, now, cost, commit)
        backend = self._backend
        # try/except on the caught classes rather than map_redis_errors: a generator-based
        # context manager costs ~1 µs, a measurable share of a loopback round trip.
        try:
            reply = backend.run(cast("_RedisPlan", plan).script, keys, args)
        except backend.errors as error:
            return self._fallback(error, plan)
        return self._answer(reply)

    async def adecide(self, plan: Plan, key: str, now: float, cost: int, commit: bool = True) -> RateLimitDecision:  # noqa: FBT001, FBT002 - same signature as the memory store
        """:meth:`decide` over redis-py's asyncio client."""
        keys, args = self._call(plan, key, now, cost, commit)
        backend = self._backend
        try:
            reply = await arun_script(backend.async_client(), cast("_RedisPlan", plan).script, keys, args)
        except backend.errors as error:
            return self._fallback(error, plan)
        return self._answer(reply)

    def _block_call(self, key: str, now: float, delay_s: float) -> tuple[list[bytes], list[bytes]]:
        clock = b"" if self._backend.server_time else repr(now).encode()
        return [self._base(key).encode() + b":blk"], [clock, repr(float(delay_s)).encode()]

    def block(self, key: str, now: float, delay_s: float) -> None:
        """Block *key* for every process; a Redis failure is logged and counted, not raised."""
        keys, args = self._block_call(key, now, delay_s)
        try:
            with map_redis_errors("rate-limit block"):
                self._backend.run(_BLOCK, keys, args)
        except BackendError as error:
            self._failed(error)

    async def ablock(self, key: str, now: float, delay_s: float) -> None:
        """:meth:`block` over the asyncio client."""
        keys, args = self._block_call(key, now, delay_s)
        try:
            with map_redis_errors("rate-limit block"):
                await arun_script(self._backend.async_client(), _BLOCK, keys, args)
        except BackendError as error:
            self._failed(error)

    def reset(self, key: str) -> None:
        """Delete *key*'s block and its state in every scope this process has used.

        Raises:
            BackendError: Redis failed (a reset is explicit, so it is not silently skipped).
        """
        base = self._base(key)
        keys = [base + ":blk", *(f"{base}:{scope}:{kind}" for scope in sorted(self._scopes) for kind in "bw")]
        with map_redis_errors("rate-limit reset"):
            self._backend.client.delete(*keys)


class RedisBackend:
    """Keep limiter state in Redis so many processes and hosts share one budget.

    Sync decisions use connections held out of the client's pool (one per concurrent
    caller, given back by :meth:`close`): redis-py's per-command pool checkout costs
    more than a loopback round trip.

    Args:
        url_or_client: ``redis://`` URL, or a redis-py client (sync) to use as is.
        prefix: Key prefix (keys look like ``prefix:{limiter:key}:scope:b``).
        timeout_s: Connect and socket timeout for URL-made clients: the longest a
            decision waits for a failing Redis before answering by the fail policy.
        fail_open: When Redis fails, admit (``True``) or reject for 1 s (``False``).
        server_time: Use Redis ``TIME`` (default). ``False`` uses the caller's monotonic
            clock, only meaningful within one process (tests, simulations).
        async_client: redis-py asyncio client for ``aacquire``; made from the URL if omitted.

    Raises:
        ConfigurationError: Invalid URL or timeout.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        prefix: str = "commtel:rl",
        timeout_s: float = 0.25,
        fail_open: bool = True,
        server_time: bool = True,
        async_client: Any = None,
    ) -> None:
        if not (0 < timeout_s < math.inf):
            msg = f"RedisBackend.timeout_s must be a positive finite number, got {timeout_s!r}"
            raise ConfigurationError(msg)
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.server_time = server_time
        self.client = redis_client(url_or_client, timeout_s=timeout_s)
        self.errors = redis_errors()
        self._target = url_or_client
        self.run = ScriptRunner(self.client)
        self._aclient = async_client

    def __repr__(self) -> str:
        return f"RedisBackend(prefix={self.prefix!r}, fail_open={self.fail_open}, timeout_s={self.timeout_s})"

    def bind(self, limiter: str) -> RedisStore:
        """The store of the limiter named *limiter*."""
        return RedisStore(self, limiter)

    def async_client(self) -> Any:
        """The redis-py asyncio client for ``aacquire`` (made from the URL on first use).

        Raises:
            ConfigurationError: The backend was given a sync client and no ``async_client``.
        """
        if self._aclient is None:
            if not isinstance(self._target, str):
                msg = "RedisBackend was given a sync client; pass async_client= to use aacquire"
                raise ConfigurationError(msg)
            self._aclient = async_redis_client(self._target, timeout_s=self.timeout_s)
        return self._aclient

    def close(self) -> None:
        """Give back the held connections and close the sync client's (the async one closes with its loop)."""
        self.run.close()
        self.client.close()
