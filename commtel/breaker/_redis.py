"""Circuit-breaker state shared on Redis: every process sees one state, changed atomically.

The state machine of :class:`~commtel.breaker._core.BreakerCore` runs as Lua scripts on
the server, timed by the server's clock so processes on different hosts agree. All of a
breaker's state (including its failure-rate window) is one hash under one hash-tagged
key, so a Redis Cluster serves it from one slot and a slot migration never splits it.

Round trips: a successful call on a closed breaker costs one (recording its outcome,
whose reply also says the shared state): while the last reply said "closed", and for at
most ``min(recovery_timeout, 1 s)`` after it was asked, admission is decided locally.
So a process learns that another process opened the breaker with the reply to its next
recorded call; until then at most the calls it admitted meanwhile run (one per
concurrent caller), and never once the recovery timeout could have elapsed, so half-open
admits exactly ``half_open_max_calls`` probes fleet-wide. Any other state asks Redis.
"""

from __future__ import annotations

import math

from time import monotonic  # real time: freshness of an answer from Redis, never a test's fake clock
from typing import Any

from ..backends._redis import LuaScript, backend_error, hash_tagged, map_redis_errors, redis_caller, redis_errors
from ._core import CLOSED, REJECTED, BreakerCore


__all__ = ["RedisBreakerState"]

# How long a "closed" answer may admit calls locally (further bounded by the recovery timeout).
_MAX_STALE_S = 1.0
# Packed record calls kept per breaker (a few outcomes of the current generation).
_MAX_PAYLOADS = 16

# The breaker's hash K: state, gen (bumped on every transition), reason, opened_at (server
# time), forced, probes, probes_ok, checking, consec; a count window as a ring (wi: next
# slot, wn: calls held, wf: failures held, w<i>: 1/0 per call); a time window as buckets
# tc<n>/tf<n> (calls/failures of bucket n = floor(time / (size/10))), tlast the newest.
_PRELUDE = """
local K = KEYS[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local function forget_outcomes()
  redis.call('HSET', K, 'consec', 0, 'wi', 0, 'wn', 0, 'wf', 0)
  local last = tonumber(redis.call('HGET', K, 'tlast') or '')
  if last then
    for j = last - 9, last do redis.call('HDEL', K, 'tc' .. j, 'tf' .. j) end
  end
end
local function move(to, reason, gen)
  redis.call('HSET', K, 'state', to, 'gen', gen + 1, 'checking', 0, 'probes', 0, 'probes_ok', 0, 'reason', reason)
  if to == 'open' then redis.call('HSET', K, 'opened_at', string.format('%.17g', now())) end
  if to == 'closed' then forget_outcomes() end
  return gen + 1
end
"""

# ARGV: recovery_s, half_open_max -> {ticket (-1: rejected), state, gen, retry_after_s, reason}
_ADMIT = LuaScript(
    _PRELUDE
    + """
local v = redis.call('HMGET', K, 'state', 'gen', 'reason', 'opened_at', 'forced', 'probes', 'checking')
local state, gen, reason = v[1] or 'closed', tonumber(v[2] or '0'), v[3] or ''
if state == 'closed' then return {gen, state, gen, '0', reason} end
local recovery = tonumber(ARGV[1])
if state == 'open' then
  if v[5] == '1' then return {-1, state, gen, ARGV[1], reason} end
  local wait = tonumber(v[4] or '0') + recovery - now()
  if wait > 0 then return {-1, state, gen, string.format('%.17g', wait), reason} end
  reason = 'recovery timeout elapsed'
  gen = move('half_open', reason, gen)
  state, v[6], v[7] = 'half_open', '0', '0'
end
if v[7] == '1' or tonumber(v[6] or '0') >= tonumber(ARGV[2]) then
  return {-1, state, gen, string.format('%.17g', math.min(1, recovery)), reason}
end
redis.call('HINCRBY', K, 'probes', 1)
return {gen, state, gen, '0', reason}
"""
)

# ARGV: ticket, outcome, failure_threshold|-1, rate|-1, minimum_calls, window kind (none|count|time),
#       window size, half_open_max, has_health_check (1/0) -> {check (0/1), state, gen, reason}
_RECORD = LuaScript(
    """
local v = redis.call('HMGET', KEYS[1], 'state', 'gen', 'consec', 'reason', 'wi', 'wn', 'wf')
local state, gen, reason = v[1] or 'closed', tonumber(v[2] or '0'), v[4] or ''
local outcome = ARGV[2]
if tonumber(ARGV[1]) ~= gen then return {0, state, gen, reason} end
-- The common case first: a success on a closed breaker with nothing to count.
if outcome == 'success' and state == 'closed' and ARGV[6] == 'none' and (v[3] or '0') == '0' then
  return {0, state, gen, reason}
end
"""
    + _PRELUDE
    + """
local failed = outcome == 'failure' or outcome == 'slow'
if state == 'closed' then
  if outcome == 'ignored' then return {0, state, gen, reason} end
  local consec = tonumber(v[3] or '0')
  if failed then
    consec = consec + 1
    redis.call('HSET', K, 'consec', consec)
  elseif consec ~= 0 then
    consec = 0
    redis.call('HSET', K, 'consec', 0)
  end
  local calls, failures, kind, size = 0, 0, ARGV[6], tonumber(ARGV[7])
  if kind == 'count' then
    local i, n, f = tonumber(v[5] or '0'), tonumber(v[6] or '0'), tonumber(v[7] or '0')
    local slot = 'w' .. i
    if n == size then f = f - tonumber(redis.call('HGET', K, slot) or '0') else n = n + 1 end
    if failed then f = f + 1 end
    redis.call('HSET', K, slot, failed and 1 or 0, 'wi', (i + 1) % size, 'wn', n, 'wf', f)
    calls, failures = n, f
  elseif kind == 'time' then
    local width = size / 10
    local idx = math.floor(now() / width)
    local last = tonumber(redis.call('HGET', K, 'tlast') or '')
    if last ~= idx then
      if last and last < idx then
        for j = last - 9, math.min(last, idx - 10) do redis.call('HDEL', K, 'tc' .. j, 'tf' .. j) end
      end
      redis.call('HSET', K, 'tlast', idx)
    end
    redis.call('HINCRBY', K, 'tc' .. idx, 1)
    if failed then
      redis.call('HINCRBY', K, 'tf' .. idx, 1)
      local names = {}
      for j = idx - 9, idx do names[#names + 1] = 'tc' .. j; names[#names + 1] = 'tf' .. j end
      local got = redis.call('HMGET', K, unpack(names))
      for j = 1, #got, 2 do
        calls = calls + tonumber(got[j] or '0')
        failures = failures + tonumber(got[j + 1] or '0')
      end
    end
  end
  if failed then
    local threshold, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
    if threshold >= 0 and consec >= threshold then
      reason = consec .. ' consecutive failures'
      return {0, 'open', move('open', reason, gen), reason}
    end
    if rate >= 0 and calls >= tonumber(ARGV[5]) and failures >= rate * calls then
      reason = 'failure rate ' .. failures .. '/' .. calls
      return {0, 'open', move('open', reason, gen), reason}
    end
  end
  return {0, state, gen, reason}
end
if state ~= 'half_open' then return {0, state, gen, reason} end
if outcome == 'ignored' then
  redis.call('HINCRBY', K, 'probes', -1)
  return {0, state, gen, reason}
end
if failed then
  reason = 'probe failed'
  return {0, 'open', move('open', reason, gen), reason}
end
if redis.call('HINCRBY', K, 'probes_ok', 1) < tonumber(ARGV[8]) then return {0, state, gen, reason} end
if ARGV[9] == '1' then
  redis.call('HSET', K, 'checking', 1)
  return {1, state, gen, reason}
end
reason = 'probes succeeded'
return {0, 'closed', move('closed', reason, gen), reason}
"""
)

# ARGV: ticket, healthy (0/1) -> {0, state, gen, reason}
_HEALTH = LuaScript(
    _PRELUDE
    + """
local v = redis.call('HMGET', K, 'state', 'gen', 'checking', 'reason')
local state, gen, reason = v[1] or 'closed', tonumber(v[2] or '0'), v[4] or ''
if tonumber(ARGV[1]) == gen and state == 'half_open' and v[3] == '1' then
  if ARGV[2] == '1' then state, reason = 'closed', 'health check passed' else state, reason = 'open', 'health check failed' end
  gen = move(state, reason, gen)
end
return {0, state, gen, reason}
"""
)

# ARGV: 'open' | 'closed' | 'read' -> {0, state, gen, reason}
_FORCE = LuaScript(
    _PRELUDE
    + """
local v = redis.call('HMGET', K, 'state', 'gen', 'reason')
local state, gen, reason = v[1] or 'closed', tonumber(v[2] or '0'), v[3] or ''
if ARGV[1] == 'open' then
  if state ~= 'open' then
    state, reason = 'open', 'forced open'
    gen = move(state, reason, gen)
  end
  redis.call('HSET', K, 'forced', 1)
elseif ARGV[1] == 'closed' then
  redis.call('HSET', K, 'forced', 0)
  if state ~= 'closed' then
    state, reason = 'closed', 'reset'
    gen = move(state, reason, gen)
  else
    forget_outcomes()
  end
end
return {0, state, gen, reason}
"""
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBreakerState:
    """The shared state of one named breaker; the thresholds come from the local *core*.

    Transitions this process observes (made here or by another process) are appended to
    ``core.changes`` so the breaker publishes them like local ones. :attr:`failing` is
    true between a failed Redis call and the next answer (the breaker logs once per streak).
    """

    __slots__ = (
        "_admit_args",
        "_caller",
        "_core",
        "_errors",
        "_keys",
        "_payloads",
        "_record_args",
        "_record_what",
        "_stale_s",
        "_view",
        "failing",
        "name",
        "retry_after",
    )

    def __init__(
        self,
        name: str,
        redis: str | Any,
        core: BreakerCore,
        *,
        window_type: str,
        window_size: float,
        timeout_s: float,
        cooldown_s: float,
    ) -> None:
        self.name = name
        self._core = core
        self._caller = redis_caller(redis, timeout_s=timeout_s, cooldown_s=cooldown_s)
        self._keys = [hash_tagged("commtel:breaker", name).encode()]
        kind = window_type if core.window is not None else "none"
        rate = core.failure_rate_threshold
        self._record_args = [
            str(-1 if core.failure_threshold is None else core.failure_threshold).encode(),
            repr(-1.0 if rate is None else float(rate)).encode(),
            str(core.minimum_calls).encode(),
            kind.encode(),
            repr(float(window_size) if kind == "time" else int(window_size)).encode(),
            str(core.half_open_max_calls).encode(),
            b"1" if core.has_health_check else b"0",
        ]
        self._admit_args = [repr(float(core.recovery_s)).encode(), str(core.half_open_max_calls).encode()]
        self._stale_s = min(core.recovery_s, _MAX_STALE_S)
        # (state, generation, monotonic time until which that state may decide locally)
        self._view: tuple[str, int, float] = (CLOSED, 0, -math.inf)
        self.retry_after = 0.0
        self.failing = False
        self._payloads: dict[tuple[int, str], Any] = {}
        self._record_what = f"breaker {name!r} record"
        self._errors = redis_errors()

    @property
    def last_state(self) -> str:
        """The shared state as last seen."""
        return self._view[0]

    def _seen(self, state: Any, gen: Any, reason: Any, asked_at: float) -> None:
        """Take in a reply: publish a transition, remember the state (a "closed" one may admit locally)."""
        state = _text(state)
        last = self._view[0]
        if state != last:
            self._core.changes.append((last, state, _text(reason) or "shared state"))
        self._view = (state, int(gen), asked_at + self._stale_s if state == CLOSED else -math.inf)
        self.failing = False

    def distrust(self) -> None:
        """Redis failed: the last reply no longer admits locally."""
        state, gen, _ = self._view
        self._view = (state, gen, -math.inf)

    def local_ticket(self) -> int | None:
        """The ticket of a fresh "closed" reply, else ``None`` (ask Redis)."""
        _, gen, until = self._view
        return gen if monotonic() < until else None

    def _admitted(self, reply: Any, asked_at: float) -> int:
        ticket, state, gen, retry_after, reason = reply
        self.retry_after = float(_text(retry_after))
        self._seen(state, gen, reason, asked_at)
        return REJECTED if int(ticket) < 0 else int(ticket)

    def _recorded(self, reply: Any, asked_at: float) -> bool:
        check, state, gen, reason = reply
        self._seen(state, gen, reason, asked_at)
        return bool(int(check))

    def admit(self) -> int:
        """A ticket, or ``REJECTED`` (then :attr:`retry_after` says for how long); one round trip."""
        asked_at = monotonic()
        with map_redis_errors(f"breaker {self.name!r} admit"):
            return self._admitted(self._caller.script(_ADMIT, self._keys, self._admit_args), asked_at)

    async def aadmit(self) -> int:
        """:meth:`admit` for asyncio callers."""
        asked_at = monotonic()
        with map_redis_errors(f"breaker {self.name!r} admit"):
            return self._admitted(await self._caller.ascript(_ADMIT, self._keys, self._admit_args), asked_at)

    def _record_payload(self, ticket: int, outcome: str) -> Any:
        """The packed ``_RECORD`` call for *ticket* and *outcome* (a handful per generation: cached)."""
        payloads = self._payloads
        payload = payloads.get((ticket, outcome))
        if payload is None:
            if len(payloads) >= _MAX_PAYLOADS:
                payloads.clear()
            args = [str(ticket).encode(), outcome.encode(), *self._record_args]
            payload = payloads[ticket, outcome] = self._caller.prepare(_RECORD, self._keys, args)
        return payload

    def record(self, ticket: int, outcome: str) -> bool:
        """Record an outcome (one round trip); True = the caller must run the health check."""
        asked_at = monotonic()
        try:
            reply = self._caller.run(self._record_payload(ticket, outcome), self._keys[0])
        except self._errors as exc:  # not map_redis_errors: a context manager costs ~1 µs on this hot path
            raise backend_error(self._record_what, exc) from exc
        return self._recorded(reply, asked_at)

    async def arecord(self, ticket: int, outcome: str) -> bool:
        """:meth:`record` for asyncio callers."""
        asked_at = monotonic()
        try:
            reply = await self._caller.arun(self._record_payload(ticket, outcome), self._keys[0])
        except self._errors as exc:
            raise backend_error(self._record_what, exc) from exc
        return self._recorded(reply, asked_at)

    def health_checked(self, ticket: int, *, healthy: bool) -> None:
        """Close (healthy) or reopen after the health check."""
        asked_at = monotonic()
        with map_redis_errors(f"breaker {self.name!r} health"):
            reply = self._caller.script(_HEALTH, self._keys, [str(ticket).encode(), b"1" if healthy else b"0"])
            self._recorded(reply, asked_at)

    def force(self, what: str) -> None:
        """``"open"`` (until reset) or ``"closed"`` (reset)."""
        asked_at = monotonic()
        with map_redis_errors(f"breaker {self.name!r} force"):
            self._recorded(self._caller.script(_FORCE, self._keys, [what.encode()]), asked_at)

    def read_state(self) -> str:
        """The shared state now (one round trip)."""
        self.force("read")
        return self.last_state
