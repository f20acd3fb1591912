"""Rate-limiter state in Redis: one atomic Lua script per decision, shared by every process.

The script is the same state machine as :mod:`commtel.ratelimit._core`
(GCRA for the token bucket, the admitted units for exact sliding windows), evaluated for every scope of the request and committed only if all
admit. Each plan (set of scopes) has its own script carrying its constants, sent
as a pre-packed ``EVALSHA`` (``EVAL`` on ``NOSCRIPT``) over the process's shared
connections to the deployment (see :mod:`commtel.backends._redis_link`). It reads Redis
``TIME`` so client clocks do not matter, sets a TTL of one horizon on every key it
writes, and keeps all the state of one limiter key (every scope, the block) in one
sorted set (``commtel:rl:{limiter:key}``): a decision names one key, so a Redis Cluster
serves it from one node even while its slot migrates.
When Redis fails, times out or is cooling down after a timeout, the store answers by
its fail-open/fail-closed policy and emits :class:`RateLimitBackendFailed`.
"""

# ruff: noqa: FBT003 - RateLimitDecision(True/False, ...) and commit flags are positional on the hot path
from __future__ import annotations

import logging
import math

from collections.abc import Sequence
from typing import Any, cast

from .. import _events
from .. import _validation as check
from .._exceptions import BackendError, ConfigurationError
from ..backends._redis import (
    DEFAULT_COOLDOWN_S,
    DEFAULT_TIMEOUT_S,
    LuaScript,
    backend_error,
    hash_tagged,
    map_redis_errors,
    positive_seconds,
    redis_caller,
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

# All the state of one limiter key lives in ONE sorted set (so every decision names exactly one
# key: a Redis Cluster slot migration never splits it, never answers TRYAGAIN). Every member has
# score 0 and is read by lexicographic ranges; times are doubles packed big-endian (">d"), which
# sort like the numbers for the non-negative times used here:
#   "B" <until>                      the server-feedback block (at most one)
#   "T" <sid> <tat>                  a scope's token-bucket theoretical arrival time (GCRA)
#   "U" <sid> <time> <n (>I4)>       one admitted unit of a scope's windows; n numbers the units of one time
# where <sid> is the scope's name prefixed by its length (a byte). The key's TTL is the longest
# horizon (or block) written to it, never shortened.
#
# Every plan gets its own script: this body behind "local P = {...}" holding the plan's constants
# (capacity, scope count, then per scope: ttl_ms, rate or false, burst, interval, tau, window
# count, (limit, seconds)* sorted by (seconds, limit)) and "local S = {...}" the scopes' <sid>s;
# parsing them from ARGV cost more than the round trip's own work on the server. ARGV: now
# ('' = Redis TIME), cost, commit ('1' or '0'). The answer is one string "allowed retry
# remaining limit reset" (one string.format: number-to-string conversions are what a reply
# costs). Mirrors _ratelimit_core exactly (same float operations, same merge order).
_DECIDE = (
    _NOW
    + """local K, cost = KEYS[1], tonumber(ARGV[2])
local AFTER = '\\255\\255\\255\\255\\255'
local function t8(x) return struct.pack('>d', x) end
local function at(member, from) return (struct.unpack('>d', member, from)) end
local block, tats = nil, {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', K, '[B', '(U')) do
  if string.sub(m, 1, 1) == 'B' then block = m else tats[string.sub(m, 1, #m - 8)] = m end
end
if block and at(block, 2) > now then
  local wait = at(block, 2) - now
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
-- Commits, flat: old member or false, new member (buckets) / unit prefix, stamp, whether units hold it.
local bw, zw, ttl_max, p = {}, {}, 0, 3
for i = 1, P[2] do
  local sid = S[i]
  local ttl, rate, nwin = P[p], P[p + 1], P[p + 5]
  if ttl > ttl_max then ttl_max = ttl end
  if rate then
    local burst, interval, tau = P[p + 2], P[p + 3], P[p + 4]
    local old = tats['T' .. sid]
    local tat = old and at(old, #old - 7) or now
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
      bw[#bw + 1] = old or false; bw[#bw + 1] = 'T' .. sid .. t8(new)
    end
  end
  p = p + 6
  if nwin > 0 then
    local u = 'U' .. sid
    local all, hi = '[' .. u, '[' .. u .. AFTER .. AFTER .. AFTER
    local function later(x)  -- the range of units newer than x
      if x < 0 then return all end
      return '[' .. u .. t8(x) .. AFTER
    end
    local longest = P[p + 2 * nwin - 1]
    if now - longest >= 0 then redis.call('ZREMRANGEBYLEX', K, all, '[' .. u .. t8(now - longest) .. AFTER) end
    local size = redis.call('ZLEXCOUNT', K, all, hi)
    local w_ok, w_retry, w_rem, w_lim, r_rem, r_lim = true, 0, -1, -1, -1, -1
    for _ = 1, nwin do
      local wl, ws = P[p], P[p + 1]
      p = p + 2
      local used = size
      if ws ~= longest then used = redis.call('ZLEXCOUNT', K, later(now - ws), hi) end
      local free = wl - used - cost
      if free < 0 then
        w_ok = false
        local kth = redis.call('ZRANGEBYLEX', K, later(now - ws), hi, 'LIMIT', -free - 1, 1)
        local wait = math.huge
        if kth[1] then wait = at(kth[1], #u + 1) + ws - now end
        if wait > w_retry then w_retry = wait end
        free = math.max(0, free + cost)
        if r_lim < 0 or free < r_rem then r_rem = free; r_lim = wl end
      elseif w_lim < 0 or free < w_rem then w_rem = free; w_lim = wl end
    end
    if not w_ok then w_rem = r_rem; w_lim = r_lim end
    -- The newest unit matters on a refusal (reset) or when it is not older than now (the new
    -- units then take its time); a count rules that out without fetching it in the common case.
    local newest
    if (not w_ok and size > 0) or (w_ok and redis.call('ZLEXCOUNT', K, '[' .. u .. t8(now), hi) > 0) then
      newest = at(redis.call('ZREVRANGEBYLEX', K, hi, all, 'LIMIT', 0, 1)[1], #u + 1)
    end
    if w_ok then
      local stamp = now
      if newest and newest > now then stamp = newest end
      merge(true, 0, w_rem, w_lim, stamp + longest - now)
      zw[#zw + 1] = u; zw[#zw + 1] = stamp; zw[#zw + 1] = newest == stamp
    else
      local rs = 0
      if newest then rs = newest + longest - now end
      merge(false, w_retry, w_rem, w_lim, rs)
    end
  end
end
if allowed and ARGV[3] == '1' then
  for i = 1, #bw, 2 do
    if bw[i] then redis.call('ZREM', K, bw[i]) end
    redis.call('ZADD', K, 0, bw[i + 1])
  end
  for i = 1, #zw, 3 do
    local at_stamp, n = zw[i] .. t8(zw[i + 1]), 0
    -- Units of one time are numbered 1, 2 ... and always expire together, so the numbering
    -- goes on from the units already at that time (only when the newest are).
    if zw[i + 2] then n = redis.call('ZLEXCOUNT', K, '[' .. at_stamp, '[' .. at_stamp .. AFTER) end
    if cost == 1 then
      redis.call('ZADD', K, 0, at_stamp .. struct.pack('>I4', n + 1))
    else
      local args = {}
      for unit = n + 1, n + cost do
        args[#args + 1] = 0
        args[#args + 1] = at_stamp .. struct.pack('>I4', unit)
        if #args >= 1000 then redis.call('ZADD', K, unpack(args)); args = {} end
      end
      if #args > 0 then redis.call('ZADD', K, unpack(args)) end
    end
  end
  if redis.call('PTTL', K) < ttl_max then redis.call('PEXPIRE', K, ttl_max) end
end
return string.format('%d %.17g %d %d %.17g', allowed and 1 or 0, retry, remaining, limit, reset)
"""
)

# KEYS: the limiter key. ARGV: now ('' = Redis TIME), delay seconds. Keeps the later of two blocks.
_BLOCK = LuaScript(
    _NOW
    + """local K, delay = KEYS[1], tonumber(ARGV[2])
local old = redis.call('ZRANGEBYLEX', K, '[B', '(C')[1]
if old and struct.unpack('>d', old, 2) >= now + delay then return 0 end
if old then redis.call('ZREM', K, old) end
redis.call('ZADD', K, 0, 'B' .. struct.pack('>d', now + delay))
local ms = math.ceil(delay * 1000) + 1
if redis.call('PTTL', K) < ms then redis.call('PEXPIRE', K, ms) end
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


def _lua_bytes(value: bytes) -> str:
    """*value* as a Lua string literal (every byte escaped: names may hold anything)."""
    return '"' + "".join(f"\\{byte}" for byte in value) + '"'


def scope_id(name: str) -> bytes:
    """A scope's ``<sid>`` in its limiter key's sorted set: the name prefixed by its length."""
    encoded = name.encode()
    if len(encoded) > 255:
        msg = f"rate-limit scope names are at most 255 bytes, got {name[:40]!r}..."
        raise ConfigurationError(msg)
    return bytes([len(encoded)]) + encoded


class _RedisPlan(Plan):
    """The decision script of some scopes (their constants and ``<sid>`` s built in)."""

    __slots__ = ("script",)

    def __init__(self, scopes: Sequence[Scope]) -> None:
        super().__init__(scopes, [name for name, _ in scopes])
        constants: list[float | bool] = [self.capacity, len(self.scopes)]
        for _, quota in scopes:
            constants += _scope_constants(quota)
        sids = ", ".join(_lua_bytes(scope_id(name)) for name, _ in scopes)
        self.script = LuaScript(f"local P = {{{', '.join(map(_lua, constants))}}}\nlocal S = {{{sids}}}\n{_DECIDE}")


class RedisStore:
    """One limiter's keys in Redis (see :class:`RedisBackend`).

    .. versionadded:: 0.1.0
    """

    backend = "redis"

    def __init__(self, backend: RedisBackend, limiter: str) -> None:
        self.limiter = limiter
        self._backend = backend
        self._failing = False

    def __repr__(self) -> str:
        return f"RedisStore({self.limiter!r})"

    def _base(self, key: str) -> str:
        return hash_tagged(self._backend.prefix, f"{self.limiter}:{key}")

    def plan(self, scopes: Sequence[Scope]) -> Plan:
        """Prepare the decision script of *scopes*.

        Raises:
            ConfigurationError: A scope name longer than 255 bytes.
        """
        return _RedisPlan(scopes)

    def _call(self, key: str, now: float, cost: int, commit: bool) -> tuple[list[bytes], list[bytes]]:  # noqa: FBT001 - private
        clock = b"" if self._backend.server_time else repr(now).encode()
        return [self._base(key).encode()], [clock, b"%d" % cost, b"1" if commit else b"0"]

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
        keys, args = self._call(key, now, cost, commit)
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
        keys, args = self._call(key, now, cost, commit)
        backend = self._backend
        try:
            reply = await backend.arun(cast("_RedisPlan", plan).script, keys, args)
        except backend.errors as error:
            return self._fallback(error, plan)
        return self._answer(reply)

    def _block_call(self, key: str, now: float, delay_s: float) -> tuple[list[bytes], list[bytes]]:
        clock = b"" if self._backend.server_time else repr(now).encode()
        return [self._base(key).encode()], [clock, repr(float(delay_s)).encode()]

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
                await self._backend.arun(_BLOCK, keys, args)
        except BackendError as error:
            self._failed(error)

    def reset(self, key: str) -> None:
        """Delete *key*'s state in every scope, and its block (one Redis key).

        Raises:
            BackendError: Redis failed (a reset is explicit, so it is not silently skipped).
        """
        base = self._base(key).encode()
        with map_redis_errors("rate-limit reset"):
            self._backend.caller.command(b"DEL", base, key=base)


class RedisBackend:
    """Keep limiter state in Redis so many processes and hosts share one budget.

    Every component naming the same URL (or client object) in a process shares one set
    of connections (at most ``max_connections`` per node, 100 by default; past that a
    decision waits for one within *timeout_s*: saturation is back-pressure, never a
    backend failure). Sync and asyncio callers are both served; asyncio connections
    belong to their event loop.

    Args:
        url_or_client: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://host:port[,host:port]/service``
            or ``redis+cluster://host:port[,host:port]`` URL, or a redis-py client (``Redis``,
            ``RedisCluster``, ``Sentinel.master_for()``, sync or asyncio) whose deployment and
            credentials commtel connects to with its own connections.
        prefix: Key prefix (one sorted set per limiter key: ``prefix:{limiter:key}``).
        timeout_s: The longest a decision waits on Redis (for a free connection, then the
            reply) before answering by the fail policy.
        cooldown_s: After a Redis timeout, decisions answer by the fail policy at once for
            this long (then one probes Redis), so a hung Redis costs one timeout per cool-down.
        fail_open: When Redis fails, admit (``True``) or reject for 1 s (``False``).
        server_time: Use Redis ``TIME`` (default). ``False`` uses the caller's monotonic
            clock, only meaningful within one process (tests, simulations).

    Raises:
        ConfigurationError: Invalid URL, client, timeout or cool-down.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        prefix: str = "commtel:rl",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        fail_open: bool = True,
        server_time: bool = True,
    ) -> None:
        self.prefix = check.text(prefix, "prefix", owner="RedisBackend")
        self.timeout_s = positive_seconds(timeout_s, "RedisBackend.timeout_s")
        self.cooldown_s = positive_seconds(cooldown_s, "RedisBackend.cooldown_s")
        self.fail_open = fail_open
        self.server_time = server_time
        self.caller = redis_caller(url_or_client, timeout_s=self.timeout_s, cooldown_s=self.cooldown_s)
        self.errors = redis_errors()
        self.run = self.caller.script
        self.arun = self.caller.ascript

    def __repr__(self) -> str:
        return (
            f"RedisBackend({self.caller.link.label!r}, prefix={self.prefix!r}, fail_open={self.fail_open}, "
            f"timeout_s={self.timeout_s})"
        )

    def bind(self, limiter: str) -> RedisStore:
        """The store of the limiter named *limiter*."""
        return RedisStore(self, limiter)

    def close(self) -> None:
        """Close the idle connections of the shared link (it reconnects if used again)."""
        self.caller.link.disconnect_idle()
