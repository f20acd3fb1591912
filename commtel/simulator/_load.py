"""Open-loop load against an async call, and what it measured: goodput, p99, convergence.

Calls arrive as a Poisson process (seeded) whatever happens to earlier ones, as users
of a service do; each runs as its own task. :class:`LoadRun` keeps every completion
(when, how long), refusal and error, and a trace of any value worth watching (a
limiter's limit), and answers goodput and p99 over any stretch of the run.
"""

from __future__ import annotations

import asyncio
import math
import random

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


__all__ = ["LoadRun", "open_loop"]


@dataclass
class LoadRun:
    """What one load run measured (times in seconds from its start).

    .. versionadded:: 0.1.0
    """

    completions: list[tuple[float, float]] = field(default_factory=list)  # (finished at, latency)
    refused: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    trace: list[tuple[float, float]] = field(default_factory=list)  # (at, watched value)

    def goodput(self, start: float, end: float) -> float:
        """Calls completed per second within [start, end)."""
        return sum(1 for at, _ in self.completions if start <= at < end) / (end - start)

    def p99(self, start: float, end: float) -> float:
        """The 99th percentile latency of the calls completed within [start, end) (``inf``: none)."""
        latencies = sorted(latency for at, latency in self.completions if start <= at < end)
        if not latencies:
            return math.inf
        return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]

    def traced(self, at: float) -> float:
        """The watched value at time *at* (the last one recorded before it)."""
        value = self.trace[0][1] if self.trace else math.nan
        for when, recorded in self.trace:
            if when > at:
                break
            value = recorded
        return value

    def converged_after(
        self, start: float, end: float, *, min_goodput: float, max_p99: float, stretch_s: float = 2.0
    ) -> float:
        """Seconds after *start* from which every stretch until *end* meets both bounds (``inf``: never).

        Stretches are *stretch_s* long and start every 0.5 s; each must complete at least
        *min_goodput* calls per second with a p99 latency of at most *max_p99*. Two seconds
        by default: long enough for a p99 of a few hundred calls to mean something.
        """
        starts = [start + 0.5 * i for i in range(int((end - stretch_s - start) * 2) + 1)]
        good = [self.goodput(s, s + stretch_s) >= min_goodput and self.p99(s, s + stretch_s) <= max_p99 for s in starts]
        for i in range(len(starts)):
            if all(good[i:]):
                return starts[i] - start
        return math.inf


async def _record(run: LoadRun, call: Callable[[], Awaitable[Any]], origin: float, refused: Any) -> None:
    loop = asyncio.get_running_loop()
    begun = loop.time()
    try:
        await call()
    except refused:
        run.refused.append(begun - origin)
        return
    except Exception:
        run.errors.append(begun - origin)
        return
    now = loop.time()
    run.completions.append((now - origin, now - begun))


async def _watch(run: LoadRun, watch: Callable[[], float], origin: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        run.trace.append((loop.time() - origin, watch()))
        await asyncio.sleep(0.1)


async def open_loop(
    call: Callable[[], Awaitable[Any]],
    *,
    rate: float,
    duration: float,
    seed: int = 1,
    refused: type[BaseException] | tuple[type[BaseException], ...] = (),
    watch: Callable[[], float] | None = None,
    at: Sequence[tuple[float, Callable[[], None]]] = (),
) -> LoadRun:
    """Send calls at *rate* per second (Poisson) for *duration* seconds; wait for the last to end.

    Args:
        call: Makes one call (awaited in a task of its own).
        rate: Mean arrivals per second.
        duration: Seconds of arrivals.
        seed: Seed of the arrival times.
        refused: Exceptions that mean "refused" (not an error): a limiter's refusal.
        watch: Sampled every 0.1 s into :attr:`LoadRun.trace` (say, a limiter's limit).
        at: ``(seconds, action)`` pairs run at those times (say, moving the knee).
    """
    loop = asyncio.get_running_loop()
    run = LoadRun()
    rng = random.Random(seed)
    origin = loop.time()
    for when, action in at:
        loop.call_at(origin + when, action)
    watching = asyncio.create_task(_watch(run, watch, origin)) if watch is not None else None
    tasks: set[asyncio.Task[None]] = set()
    next_at = origin + rng.expovariate(rate)
    while next_at - origin < duration:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        task = asyncio.create_task(_record(run, call, origin, refused))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += rng.expovariate(rate)
    if tasks:
        await asyncio.wait(tasks)
    if watching is not None:
        watching.cancel()
    return run
