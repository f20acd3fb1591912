"""Rate-limiter state in Redis: one atomic Lua script per decision, shared by every process.

The script is the same state machine as :mod:`commtel.policies._ratelimit_core`
(GCRA for the token bucket, a sorted set of admitted units for exact sliding
windows), evaluated for every scope of the request and committed only if all
admit. It is registered with redis-py's ``register_script`` (``EVALSHA``, with a
``SCRIPT LOAD`` fallback on ``NOSCRIPT``), reads Redis ``TIME`` so client clocks
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
from ..policies._ratelimit_core import Quota, RateLimitDecision, SlidingWindow, TokenBucket
from ..policies._ratelimit_events import RateLimitBackendFailed
from ..policies._ratelimit_store import Plan, Scope
from ._redis import async_redis_client, hash_tagged, map_redis_errors, redis_client


__all__ = ["RedisBackend", "RedisStore"]

_log = logging.getLogger("commtel.ratelimit")

# Retry hint of a fail-closed decision while Redis is unreachable.
_FAIL_CLOSED_RETRY_S = 1.0

# Redis TIME counts from 2020-09-13 (1.6e9) so doubles keep ~1e-8 s of precision.
# KEYS: block key, then per scope its hash (t = GCRA arrival time, s = unit sequence) and its
# sorted set of admitted units. ARGV: now ('' = Redis TIME), cost, commit, and the plan as one
# space-separated string (fewer arguments to encode per call): capacity, scope count, then per
# scope ttl_ms, has_bucket, rate, burst, interval, tau, window count, (limit, seconds)*.
# The answer is one string "allowed retry remaining limit reset" (cheaper to parse than an array).
# Mirrors _ratelimit_core exactly (same float operations, same merge order).
_DECIDE = """
local function fmt(x) return string.format('%.17g', x) end
local function trunc(x) if x >= 0 then return math.floor(x) end return math.ceil(x) end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1600000000) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local P = {}
for x in string.gmatch(ARGV[4], '%S+') do P[#P + 1] = x end
local blk = redis.call('GET', KEYS[1])
if blk and tonumber(blk) > now then
  local wait = fmt(tonumber(blk) - now)
  return '0 ' .. wait .. ' 0 ' .. P[1] .. ' ' .. wait
end
local allowed, retry, remaining, limit, reset, first = true, 0, 0, 0, 0, true
local function merge(a, r, rem, lim, rs)
  allowed = allowed and a
  if r > retry then retry = r end
  if first or rem < remaining then remaining = rem; limit = lim end
  if first or rs > reset then reset = rs end
  first = false
end
local writes = {}
local argi = 3
for s = 1, tonumber(P[2]) do
  local hkey, zkey = KEYS[2 * s], KEYS[2 * s + 1]
  local ttl, has_bucket = tonumber(P[argi]), P[argi + 1] == '1'
  local rate, burst = tonumber(P[argi + 2]), tonumber(P[argi + 3])
  local interval, tau, nwin = tonumber(P[argi + 4]), tonumber(P[argi + 5]), tonumber(P[argi + 6])
  argi = argi + 7
  local w = {hkey = hkey, zkey = zkey, ttl = ttl}
  if has_bucket then
    local raw = redis.call('HGET', hkey, 't')
    local tat = raw and tonumber(raw) or now
    if tat < now then tat = now end
    local new = tat + cost * interval
    local ahead = new - now
    if ahead > tau + 1e-9 then
      merge(false, ahead - tau, math.max(0, trunc(burst - (tat - now) * rate + 1e-9)), burst, tat - now)
    else
      merge(true, 0, trunc(burst - ahead * rate + 1e-9), burst, ahead)
      w.tat = new
    end
  end
  if nwin > 0 then
    local longest = tonumber(P[argi + 2 * nwin - 1])
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', fmt(now - longest))
    local size = redis.call('ZCARD', zkey)
    local w_ok, w_retry, w_rem, w_lim = true, 0, -1, -1
    for _ = 1, nwin do
      local wl, ws = tonumber(P[argi]), tonumber(P[argi + 1])
      argi = argi + 2
      local used = size
      if ws ~= longest then used = redis.call('ZCOUNT', zkey, '(' .. fmt(now - ws), '+inf') end
      local free = wl - used - cost
      if free < 0 then
        w_ok = false
        local kth = redis.call('ZRANGEBYSCORE', zkey, '(' .. fmt(now - ws), '+inf', 'WITHSCORES', 'LIMIT', -free - 1, 1)
        local wait = math.huge
        if kth[2] then wait = tonumber(kth[2]) + ws - now end
        if wait > w_retry then w_retry = wait end
        free = math.max(0, free + cost)
      end
      if w_lim < 0 or free < w_rem then w_rem = free; w_lim = wl end
    end
    local last = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
    local newest = last[2] and tonumber(last[2])
    if w_ok then
      local stamp = now
      if newest and newest > now then stamp = newest end
      merge(true, 0, w_rem, w_lim, stamp + longest - now)
      w.stamp = stamp
    else
      local rs = 0
      if newest then rs = newest + longest - now end
      merge(false, w_retry, w_rem, w_lim, rs)
    end
  end
  writes[s] = w
end
if allowed and ARGV[3] == '1' then
  for _, w in ipairs(writes) do
    if w.tat then redis.call('HSET', w.hkey, 't', fmt(w.tat)) end
    if w.stamp then
      local seq = redis.call('HINCRBY', w.hkey, 's', cost)
      local score, args = fmt(w.stamp), {}
      for i = seq - cost + 1, seq do
        args[#args + 1] = score
        args[#args + 1] = score .. ':' .. i
        if #args >= 1000 then redis.call('ZADD', w.zkey, unpack(args)); args = {} end
      end
      if #args > 0 then redis.call('ZADD', w.zkey, unpack(args)) end
      redis.call('PEXPIRE', w.zkey, w.ttl)
    end
    redis.call('PEXPIRE', w.hkey, w.ttl)
  end
end
return (allowed and '1 ' or '0 ') .. fmt(retry) .. ' ' .. remaining .. ' ' .. limit .. ' ' .. fmt(reset)
"""

# KEYS: block key. ARGV: now ('' = Redis TIME), delay seconds. Keeps the later of two blocks.
_BLOCK = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - 1600000000) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local delay = tonumber(ARGV[2])
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= now + delay then return 0 end
redis.call('SET', KEYS[1], string.format('%.17g', now + delay), 'PX', math.ceil(delay * 1000) + 1)
return 1
"""


def _scope_args(quota: Quota) -> list[str]:
    bucket = next((limit for limit in quota.limits if isinstance(limit, TokenBucket)), None)
    windows = sorted((limit for limit in quota.limits if isinstance(limit, SlidingWindow)),
                     key=lambda w: (w.window_s, w.limit))
    ttl_ms = math.ceil(quota.horizon_s * 1000) + 1000
    args = [str(ttl_ms)]
    if bucket is None:
        args += ["0", "0", "0", "0", "0"]
    else:
        rate = float(bucket.rate)
        interval = 1.0 / rate
        args += ["1", repr(rate), str(bucket.burst), repr(interval), repr(bucket.burst * interval)]
    args.append(str(len(windows)))
    for window in windows:
        args += [str(window.limit), repr(float(window.window_s))]
    return args


class _RedisPlan(Plan):
    __slots__ = ("suffixes", "tail")

    def __init__(self, scopes: Sequence[Scope]) -> None:
        super().__init__(scopes, [name for name, _ in scopes])
        self.suffixes = tuple(f":{name}:{kind}" for name, _ in scopes for kind in ("h", "z"))
        tail = [str(self.capacity), str(len(self.scopes))]
        for _, quota in scopes:
            tail += _scope_args(quota)
        self.tail = " ".join(tail).encode()


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
        """Precompute the script arguments of *scopes*."""
        self._scopes.update(name for name, _ in scopes)
        return _RedisPlan(scopes)

    def _call(self, plan: Plan, key: str, now: float, cost: int, commit: bool) -> tuple[list[str], list[Any]]:  # noqa: FBT001 - private
        redis_plan = cast("_RedisPlan", plan)
        base = self._base(key)
        keys = [base + ":blk", *(base + suffix for suffix in redis_plan.suffixes)]
        clock = "" if self._backend.server_time else repr(now)
        return keys, [clock, cost, "1" if commit else "0", redis_plan.tail]

    def _answer(self, reply: Any) -> RateLimitDecision:
        if self._failing:
            self._failing = False
            _log.warning("rate limiter %r: redis reachable again", self.limiter)
        allowed, retry, remaining, limit, reset = reply.split()
        return RateLimitDecision(allowed in (b"1", "1"), float(retry), int(remaining), int(limit), float(reset))

    def _failed(self, error: BackendError) -> None:
        """Log the first failure of a streak and emit :class:`RateLimitBackendFailed`."""
        if not self._failing:
            self._failing = True
            _log.warning("rate limiter %r: %s; failing %s", self.limiter, error,
                         "open" if self._backend.fail_open else "closed")
        if listeners := _events.active_listeners():
            cause = type(error.__cause__).__name__ if error.__cause__ is not None else type(error).__name__
            _events.emit(RateLimitBackendFailed(self.limiter, "redis", cause, self._backend.fail_open), listeners)

    def _fallback(self, error: BackendError, plan: Plan) -> RateLimitDecision:
        """The fail-open (admit) or fail-closed (reject for a second) decision."""
        self._failed(error)
        if self._backend.fail_open:
            return RateLimitDecision(True, 0.0, 0, plan.capacity, 0.0)
        return RateLimitDecision(False, _FAIL_CLOSED_RETRY_S, 0, plan.capacity, _FAIL_CLOSED_RETRY_S)

    def decide(self, plan: Plan, key: str, now: float, cost: int, commit: bool = True) -> RateLimitDecision:  # noqa: FBT001, FBT002 - same signature as the memory store
        """One ``EVALSHA`` round trip; on failure, the fail-open/closed answer."""
        keys, args = self._call(plan, key, now, cost, commit)
        try:
            with map_redis_errors("rate-limit decision"):
                reply = self._backend.decide_script(keys=keys, args=args)
        except BackendError as error:
            return self._fallback(error, plan)
        return self._answer(reply)

    async def adecide(self, plan: Plan, key: str, now: float, cost: int, commit: bool = True) -> RateLimitDecision:  # noqa: FBT001, FBT002 - same signature as the memory store
        """:meth:`decide` over redis-py's asyncio client."""
        keys, args = self._call(plan, key, now, cost, commit)
        try:
            with map_redis_errors("rate-limit decision"):
                reply = await self._backend.async_decide_script(keys=keys, args=args)
        except BackendError as error:
            return self._fallback(error, plan)
        return self._answer(reply)

    def _block_call(self, key: str, now: float, delay_s: float) -> tuple[list[str], list[Any]]:
        clock = "" if self._backend.server_time else repr(now)
        return [self._base(key) + ":blk"], [clock, repr(float(delay_s))]

    def block(self, key: str, now: float, delay_s: float) -> None:
        """Block *key* for every process; a Redis failure is logged and counted, not raised."""
        keys, args = self._block_call(key, now, delay_s)
        try:
            with map_redis_errors("rate-limit block"):
                self._backend.block_script(keys=keys, args=args)
        except BackendError as error:
            self._failed(error)

    async def ablock(self, key: str, now: float, delay_s: float) -> None:
        """:meth:`block` over the asyncio client."""
        keys, args = self._block_call(key, now, delay_s)
        try:
            with map_redis_errors("rate-limit block"):
                await self._backend.async_block_script(keys=keys, args=args)
        except BackendError as error:
            self._failed(error)

    def reset(self, key: str) -> None:
        """Delete *key*'s block and its state in every scope this process has used.

        Raises:
            BackendError: Redis failed (a reset is explicit, so it is not silently skipped).
        """
        base = self._base(key)
        keys = [base + ":blk", *(f"{base}:{scope}:{kind}" for scope in sorted(self._scopes) for kind in "hz")]
        with map_redis_errors("rate-limit reset"):
            self._backend.client.delete(*keys)


class RedisBackend:
    """Keep limiter state in Redis so many processes and hosts share one budget.

    Args:
        url_or_client: ``redis://`` URL, or a redis-py client (sync) to use as is.
        prefix: Key prefix (keys look like ``prefix:{limiter:key}:scope:h``).
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

    def __init__(self, url_or_client: str | Any, *, prefix: str = "commtel:rl", timeout_s: float = 0.25,
                 fail_open: bool = True, server_time: bool = True, async_client: Any = None) -> None:
        if not (0 < timeout_s < math.inf):
            msg = f"RedisBackend.timeout_s must be a positive finite number, got {timeout_s!r}"
            raise ConfigurationError(msg)
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.server_time = server_time
        self.client = redis_client(url_or_client, timeout_s=timeout_s)
        self._target = url_or_client
        self._async_client = async_client
        self.decide_script = self.client.register_script(_DECIDE)
        self.block_script = self.client.register_script(_BLOCK)
        self._async_scripts: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"RedisBackend(prefix={self.prefix!r}, fail_open={self.fail_open}, timeout_s={self.timeout_s})"

    def bind(self, limiter: str) -> RedisStore:
        """The store of the limiter named *limiter*."""
        return RedisStore(self, limiter)

    def _async(self) -> tuple[Any, Any]:
        if self._async_scripts is None:
            client = self._async_client
            if client is None:
                if not isinstance(self._target, str):
                    msg = "RedisBackend was given a sync client; pass async_client= to use aacquire"
                    raise ConfigurationError(msg)
                client = self._async_client = async_redis_client(self._target, timeout_s=self.timeout_s)
            self._async_scripts = (client.register_script(_DECIDE), client.register_script(_BLOCK))
        return self._async_scripts

    async def async_decide_script(self, *, keys: list[str], args: list[Any]) -> Any:
        """Run the decision script on the asyncio client."""
        return await self._async()[0](keys=keys, args=args)

    async def async_block_script(self, *, keys: list[str], args: list[Any]) -> Any:
        """Run the block script on the asyncio client."""
        return await self._async()[1](keys=keys, args=args)

    def close(self) -> None:
        """Close the sync client's connections (the async one closes with its loop)."""
        self.client.close()

