"""Circuit-breaker state shared on Redis: every process sees one state, changed atomically.

The state machine of :class:`~commtel.breaker._core.BreakerCore` runs as Lua
scripts on the server (one round trip to admit, one to record), timed by the server's
clock so processes on different hosts agree. The keys are hash-tagged, so a Redis
Cluster keeps them on one slot.
"""

from __future__ import annotations

import asyncio

from typing import Any

from ..backends._redis import async_redis_client, hash_tagged, map_redis_errors, redis_client
from ._core import REJECTED, BreakerCore


__all__ = ["RedisBreakerState"]

_PRELUDE = """
local K, W = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local function get(f, d) local v = redis.call('HGET', K, f); if v then return v end; return d end
local function move(to, reason)
  local gen = tonumber(get('gen', '0')) + 1
  redis.call('HSET', K, 'state', to, 'gen', gen, 'checking', 0, 'probes', 0, 'probes_ok', 0, 'reason', reason)
  if to == 'open' then redis.call('HSET', K, 'opened_at', tostring(now)) end
  if to == 'closed' then redis.call('HSET', K, 'consec', 0); redis.call('DEL', W) end
end
"""

# ARGV: recovery_s, half_open_max -> {ticket, state, retry_after_s, reason}
_ADMIT = (
    _PRELUDE
    + """
local state = get('state', 'closed')
if state == 'closed' then return {tonumber(get('gen', '0')), state, '0', get('reason', '')} end
if state == 'open' then
  if get('forced', '0') == '1' then return {-1, state, ARGV[1], get('reason', '')} end
  local wait = tonumber(get('opened_at', '0')) + tonumber(ARGV[1]) - now
  if wait > 0 then return {-1, state, tostring(wait), get('reason', '')} end
  move('half_open', 'recovery timeout elapsed')
  state = 'half_open'
end
if get('checking', '0') == '1' or tonumber(get('probes', '0')) >= tonumber(ARGV[2]) then
  return {-1, state, tostring(math.min(1, tonumber(ARGV[1]))), get('reason', '')}
end
redis.call('HINCRBY', K, 'probes', 1)
return {tonumber(get('gen', '0')), state, '0', get('reason', '')}
"""
)

# ARGV: ticket, outcome, failure_threshold|-1, rate|-1, minimum_calls, window kind, window size,
#       half_open_max, has_health_check -> {check (0/1), state, reason}
_RECORD = (
    _PRELUDE
    + """
local state = get('state', 'closed')
if tonumber(ARGV[1]) ~= tonumber(get('gen', '0')) then return {0, state, get('reason', '')} end
local outcome = ARGV[2]
local failed = outcome == 'failure' or outcome == 'slow'
if state == 'closed' then
  if outcome == 'ignored' then return {0, state, get('reason', '')} end
  local consec = 0
  if failed then consec = redis.call('HINCRBY', K, 'consec', 1) else redis.call('HSET', K, 'consec', 0) end
  local calls, failures, size = 0, 0, tonumber(ARGV[7])
  if ARGV[6] == 'count' then
    redis.call('RPUSH', W, failed and 1 or 0)
    redis.call('LTRIM', W, -size, -1)
    if failed then
      local items = redis.call('LRANGE', W, 0, -1)
      calls = #items
      for i = 1, calls do failures = failures + tonumber(items[i]) end
    end
  elseif ARGV[6] == 'time' then
    local width = size / 10
    local idx = math.floor(now / width)
    redis.call('HINCRBY', W, 'c' .. idx, 1)
    if failed then redis.call('HINCRBY', W, 'f' .. idx, 1) end
    redis.call('PEXPIRE', W, math.ceil(size * 2000))
    if failed then
      local fields = redis.call('HGETALL', W)
      for i = 1, #fields, 2 do
        local at = tonumber(string.sub(fields[i], 2))
        if at <= idx - 10 then redis.call('HDEL', W, fields[i])
        elseif string.sub(fields[i], 1, 1) == 'c' then calls = calls + tonumber(fields[i + 1])
        else failures = failures + tonumber(fields[i + 1]) end
      end
    end
  end
  if failed then
    local threshold, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
    if threshold >= 0 and consec >= threshold then
      move('open', consec .. ' consecutive failures')
      return {0, 'open', get('reason', '')}
    end
    if rate >= 0 and calls >= tonumber(ARGV[5]) and failures >= rate * calls then
      move('open', 'failure rate ' .. failures .. '/' .. calls)
      return {0, 'open', get('reason', '')}
    end
  end
  return {0, state, get('reason', '')}
end
if state ~= 'half_open' then return {0, state, get('reason', '')} end
if outcome == 'ignored' then
  redis.call('HINCRBY', K, 'probes', -1)
  return {0, state, get('reason', '')}
end
if failed then
  move('open', 'probe failed')
  return {0, 'open', get('reason', '')}
end
if redis.call('HINCRBY', K, 'probes_ok', 1) < tonumber(ARGV[8]) then return {0, state, get('reason', '')} end
if ARGV[9] == '1' then
  redis.call('HSET', K, 'checking', 1)
  return {1, state, get('reason', '')}
end
move('closed', 'probes succeeded')
return {0, 'closed', get('reason', '')}
"""
)

# ARGV: ticket, healthy (0/1) -> {0, state, reason}
_HEALTH = (
    _PRELUDE
    + """
if tonumber(ARGV[1]) == tonumber(get('gen', '0')) and get('state', 'closed') == 'half_open' and get('checking', '0') == '1' then
  if ARGV[2] == '1' then move('closed', 'health check passed') else move('open', 'health check failed') end
end
return {0, get('state', 'closed'), get('reason', '')}
"""
)

# ARGV: 'open' | 'closed' | 'read' -> {0, state, reason}
_FORCE = (
    _PRELUDE
    + """
if ARGV[1] == 'open' then
  if get('state', 'closed') ~= 'open' then move('open', 'forced open') end
  redis.call('HSET', K, 'forced', 1)
elseif ARGV[1] == 'closed' then
  redis.call('HSET', K, 'forced', 0)
  if get('state', 'closed') ~= 'closed' then move('closed', 'reset') end
  redis.call('HSET', K, 'consec', 0)
  redis.call('DEL', W)
end
return {0, get('state', 'closed'), get('reason', '')}
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBreakerState:
    """The shared state of one named breaker; the thresholds come from the local *core*.

    Transitions this process observes (made here or by another process) are appended to
    ``core.changes`` so the breaker publishes them like local ones.
    """

    __slots__ = (
        "_aclient",
        "_aloop",
        "_ascripts",
        "_client",
        "_core",
        "_keys",
        "_scripts",
        "_target",
        "_window",
        "last_state",
        "name",
        "retry_after",
    )

    def __init__(self, name: str, redis: str | Any, core: BreakerCore, *, window_type: str, window_size: float) -> None:
        self.name = name
        self._core = core
        self._target = redis
        self._client = redis_client(redis)
        self._scripts = [self._client.register_script(src) for src in (_ADMIT, _RECORD, _HEALTH, _FORCE)]
        self._aclient: Any = None
        self._aloop: Any = None
        self._ascripts: list[Any] = []
        key = hash_tagged("commtel:breaker", name)
        self._keys = [key, f"{key}:w"]
        self._window = (window_type if core.window is not None else "none", window_size)
        self.last_state = "closed"
        self.retry_after = 0.0
        self.read_state()

    def _async_scripts(self) -> list[Any]:
        loop = asyncio.get_running_loop()
        if self._aloop is not loop:
            target = self._target if isinstance(self._target, str) else self._client.connection_pool.connection_kwargs
            if isinstance(target, dict):
                import redis.asyncio as aredis

                self._aclient = aredis.Redis(**target)
            else:
                self._aclient = async_redis_client(target)
            self._aloop = loop
            self._ascripts = [self._aclient.register_script(src) for src in (_ADMIT, _RECORD, _HEALTH, _FORCE)]
        return self._ascripts

    def _seen(self, state: Any, reason: Any) -> None:
        state = _text(state)
        if state != self.last_state:
            self._core.changes.append((self.last_state, state, _text(reason) or "shared state"))
            self.last_state = state

    def _admit_args(self) -> list[Any]:
        core = self._core
        return [core.recovery_s, core.half_open_max_calls]

    def _record_args(self, ticket: int, outcome: str) -> list[Any]:
        core = self._core
        kind, size = self._window
        return [
            ticket,
            outcome,
            -1 if core.failure_threshold is None else core.failure_threshold,
            -1 if core.failure_rate_threshold is None else core.failure_rate_threshold,
            core.minimum_calls,
            kind,
            size,
            core.half_open_max_calls,
            int(core.has_health_check),
        ]

    def _admitted(self, reply: Any) -> int:
        ticket, state, retry_after, reason = reply
        self._seen(state, reason)
        self.retry_after = float(_text(retry_after))
        return REJECTED if int(ticket) < 0 else int(ticket)

    def _recorded(self, reply: Any) -> bool:
        check, state, reason = reply
        self._seen(state, reason)
        return bool(int(check))

    def admit(self) -> int:
        """A ticket, or ``REJECTED`` (then :attr:`retry_after` says for how long)."""
        with map_redis_errors(f"breaker {self.name!r} admit"):
            return self._admitted(self._scripts[0](keys=self._keys, args=self._admit_args()))

    async def aadmit(self) -> int:
        """:meth:`admit` on the asyncio client."""
        with map_redis_errors(f"breaker {self.name!r} admit"):
            return self._admitted(await self._async_scripts()[0](keys=self._keys, args=self._admit_args()))

    def record(self, ticket: int, outcome: str) -> bool:
        """Record an outcome; True = the caller must run the health check."""
        with map_redis_errors(f"breaker {self.name!r} record"):
            return self._recorded(self._scripts[1](keys=self._keys, args=self._record_args(ticket, outcome)))

    async def arecord(self, ticket: int, outcome: str) -> bool:
        """:meth:`record` on the asyncio client."""
        with map_redis_errors(f"breaker {self.name!r} record"):
            reply = await self._async_scripts()[1](keys=self._keys, args=self._record_args(ticket, outcome))
            return self._recorded(reply)

    def health_checked(self, ticket: int, *, healthy: bool) -> None:
        """Close (healthy) or reopen after the health check."""
        with map_redis_errors(f"breaker {self.name!r} health"):
            self._recorded(self._scripts[2](keys=self._keys, args=[ticket, int(healthy)]))

    def force(self, what: str) -> None:
        """``"open"`` (until reset) or ``"closed"`` (reset)."""
        with map_redis_errors(f"breaker {self.name!r} force"):
            self._recorded(self._scripts[3](keys=self._keys, args=[what]))

    def read_state(self) -> str:
        """The shared state now."""
        with map_redis_errors(f"breaker {self.name!r} read"):
            self._recorded(self._scripts[3](keys=self._keys, args=["read"]))
        return self.last_state
