"""Test helpers of the rate-limiter suite: the Lua script against the Python core."""

from __future__ import annotations

import time

from hypothesis import strategies as st

from commtel.ratelimit import MemoryBackend, RedisBackend
from commtel.ratelimit._core import Limit, compile_quota


#: Arrivals as (ticks of 1/64 s since the previous one, cost, peek only).
steps = st.lists(st.tuples(st.integers(0, 96), st.integers(1, 2), st.booleans()), max_size=40)


def assert_lua_decides_like_core(
    redis_url: str, scopes: list[tuple[str, list[Limit]]], arrivals: list[tuple[int, int, bool]]
) -> None:
    """Feed the same *arrivals* to the Redis store and the memory store; every decision must be equal."""
    backend = RedisBackend(redis_url, server_time=False, prefix=f"eq{time.monotonic_ns()}")
    try:
        compiled = [(name, compile_quota(limits)) for name, limits in scopes]
        memory, shared = MemoryBackend().bind("eq"), backend.bind("eq")
        memory_plan, shared_plan = memory.plan(compiled), shared.plan(compiled)
        now = 1000.0
        for ticks, cost, peek in arrivals:
            now += ticks / 64
            assert shared.decide(shared_plan, "k", now, cost, not peek) == memory.decide(
                memory_plan, "k", now, cost, not peek
            )
    finally:
        backend.close()
