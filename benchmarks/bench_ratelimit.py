"""Rate limiter, allowed path: commtel vs limits, PyrateLimiter and aiolimiter; Redis vs limits and PING.

In memory the baseline is limits' fixed window (target: commtel <= 0.3x), measured with
events off (``set_listeners([])``) and on (the telemetry listener counting every decision).
A "busy key" group shows the cost does not grow with the units held in a window (limits'
moving window does). The Redis group starts ``redis-server --save ''`` on a free port if
the binary exists (else those cases are skipped); its baseline is redis-py's PING (target
<= 1.2x: one round trip), and an ``EVALSHA`` of an empty script shows what any script costs;
its cases run interleaved (see :class:`~benchmarks._harness.Interleaved`). The last group reports bytes per idle key at 1M keys, measured
with tracemalloc apart from the timings (the ns/call column holds bytes there).
"""

from __future__ import annotations

import atexit
import gc
import shutil
import socket
import subprocess
import time
import tracemalloc

from collections.abc import Callable

from prometheus_client import CollectorRegistry

import commtel
import commtel.events

from benchmarks._harness import Case, Interleaved
from benchmarks.bench_retry import _listeners
from commtel import RateLimiter
from commtel.ratelimit import RedisBackend, SlidingWindow, TokenBucket
from commtel.telemetry._metrics import use_registry


_MEMORY = "ratelimit in memory, allowed path"
_BUSY = "ratelimit in memory, key holding 20k units"
_REDIS = "ratelimit on redis, allowed path"
_BYTES = "ratelimit bytes per idle key (1M keys)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_url() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.02)
        else:
            return f"redis://127.0.0.1:{port}/0"
    return None


def _memory_cases() -> list[Case]:
    import aiolimiter
    import pyrate_limiter

    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    huge = parse("1000000000/hour")
    fixed = FixedWindowRateLimiter(MemoryStorage())
    moving = MovingWindowRateLimiter(MemoryStorage())
    pyrate = pyrate_limiter.Limiter(pyrate_limiter.Rate(10**9, pyrate_limiter.Duration.HOUR))
    aio = aiolimiter.AsyncLimiter(10**9, 1)
    bucket = RateLimiter(TokenBucket(1e9, 10**9), name="bench-bucket")
    window = RateLimiter(SlidingWindow(10**9, 3600.0), name="bench-window")

    def fixed_hit() -> bool:
        return fixed.hit(huge, "hot")

    def moving_hit() -> bool:
        return moving.hit(huge, "hot")

    def pyrate_hit() -> bool:
        return bool(pyrate.try_acquire("hot"))

    async def aio_hit() -> None:
        await aio.acquire()

    async def bucket_async() -> object:
        return await bucket.aacquire("hot")

    out = [
        Case(_MEMORY, "limits fixed window", fn=fixed_hit, baseline=True),
        Case(_MEMORY, "limits moving window", fn=moving_hit),
        Case(_MEMORY, "pyrate-limiter try_acquire", fn=pyrate_hit),
        Case(_MEMORY, "aiolimiter acquire (async)", afn=aio_hit),
    ]
    for on in (False, True):
        tag = "events on" if on else "events off"
        target = None if on else 0.3
        out += [
            _listeners(
                Case(
                    _MEMORY,
                    f"commtel token bucket try_acquire, {tag}",
                    fn=lambda: bucket.try_acquire("hot"),
                    target=target,
                ),
                on=on,
            ),
            _listeners(
                Case(
                    _MEMORY,
                    f"commtel sliding window try_acquire, {tag}",
                    fn=lambda: window.try_acquire("hot"),
                    target=target,
                ),
                on=on,
            ),
        ]
    out.append(_listeners(Case(_MEMORY, "commtel token bucket aacquire, events off", afn=bucket_async), on=False))
    return out


def _busy_cases() -> list[Case]:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    huge = parse("1000000000/hour")
    moving = MovingWindowRateLimiter(MemoryStorage())
    window = RateLimiter(SlidingWindow(10**9, 3600.0), name="bench-busy")
    commtel.events.set_listeners([])
    for _ in range(20_000):
        moving.hit(huge, "busy")
        window.try_acquire("busy")
    commtel.events.set_listeners(None)
    return [
        Case(_BUSY, "limits moving window", fn=lambda: moving.hit(huge, "busy"), baseline=True),
        _listeners(Case(_BUSY, "commtel sliding window, events off", fn=lambda: window.try_acquire("busy")), on=False),
    ]


def _redis_cases(url: str) -> list[Case]:
    import redis

    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    client = redis.Redis.from_url(url)
    empty = client.script_load("return 1")
    huge = parse("1000000000/hour")
    storage = RedisStorage(url)
    fixed = FixedWindowRateLimiter(storage)
    moving = MovingWindowRateLimiter(storage)
    backend = RedisBackend(url)
    bucket = RateLimiter(TokenBucket(1e6, 10**9), name="bench-redis-bucket", backend=backend)
    window = RateLimiter(SlidingWindow(10**9, 60.0), name="bench-redis-window", backend=backend)

    fns: dict[str, Callable[[], object]] = {
        "redis-py PING": client.ping,
        "redis-py EVALSHA of 'return 1'": lambda: client.evalsha(empty, 0),
        "limits fixed window on Redis": lambda: fixed.hit(huge, "hot"),
        "limits moving window on Redis": lambda: moving.hit(huge, "hot-moving"),
        "commtel token bucket on Redis, events off": lambda: bucket.try_acquire("hot"),
        "commtel sliding window on Redis, events off": lambda: window.try_acquire("hot"),
    }
    session = Interleaved(fns)
    targets = {"commtel token bucket on Redis, events off": 1.2, "commtel sliding window on Redis, events off": 1.2}
    return [
        Case(_REDIS, name, measure=session.measure(name), baseline=name == "redis-py PING", target=targets.get(name))
        for name in fns
    ]


def _bytes_per_idle_key(limit: object, keys: int = 1_000_000) -> Callable[[], float]:
    def measure() -> float:
        commtel.events.set_listeners([])
        try:
            limiter = RateLimiter(limit, name="bench-bytes")  # type: ignore[call-overload]
            names = [f"user-{i}" for i in range(keys)]
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for name in names:
                limiter.try_acquire(name)
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            # The key strings are the caller's; the store keeps them alive, so count them too.
            key_bytes = sum(len(n) + 49 for n in names[:1000]) / 1000
            return (after - before) / keys + key_bytes
        finally:
            commtel.events.set_listeners(None)

    return measure


def cases() -> list[Case]:
    use_registry(CollectorRegistry())
    out = _memory_cases() + _busy_cases()
    url = _redis_url()
    if url is not None:
        out += _redis_cases(url)
    out += [
        Case(_BYTES, "commtel token bucket", measure=_bytes_per_idle_key(TokenBucket(1.0, 10)), note="(bytes, not ns)"),
        Case(
            _BYTES,
            "commtel sliding window",
            measure=_bytes_per_idle_key(SlidingWindow(10, 60.0)),
            note="(bytes, not ns)",
        ),
    ]
    return out
