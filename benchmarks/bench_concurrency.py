"""Bulkhead, adaptive limiter, timeout, fallback, fault injector: cost per call, and two real-time experiments.

Costs: admit + release of a free slot against the stdlib semaphores (the floor a
bulkhead cannot beat), the other wrappers against the bare call.

Experiments (real time, asyncio, open-loop Poisson traffic, see :mod:`commtel.simulator`):

* adaptive concurrency: a dependency of 100 ms whose latency grows as ``(n / knee) ** 1.5``
  past its knee of 20 calls (throughput falls past it), offered 400 calls/s (twice its
  capacity). A sweep of fixed limits finds the best one; ``AdaptiveLimiter()`` with its
  defaults runs while the knee moves 20 -> 10 (t=20 s) -> 20 (t=35 s); a fixed limit of
  2x the knee and no limit at all (each call timed out at 1 s) are shown beside it.
* hedging: a 10 ms dependency whose 3 % tail takes 20x longer, 300 calls/s, with and
  without ``Hedge()`` at the observed p95; p99 and the extra calls are from the same run.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from benchmarks._harness import Case
from benchmarks.bench_retry import _listeners
from commtel.chaos import FaultInjector
from commtel.concurrency import AdaptiveLimiter, Bulkhead, ConcurrencyLimitExceeded
from commtel.fallback import Fallback
from commtel.hedging import Hedge
from commtel.retries import RetryBudget
from commtel.simulator import LatencyModel, LoadRun, SimulatedDependency, open_loop
from commtel.telemetry._metrics import use_registry
from commtel.timeouts import Timeout


def cases() -> list[Case]:
    use_registry(CollectorRegistry())

    def bare() -> int:
        return 1

    async def abare() -> int:
        return 1

    semaphore = threading.BoundedSemaphore(10)

    def with_semaphore() -> int:
        with semaphore:
            return 1

    asemaphore: asyncio.Semaphore | None = None

    async def with_asemaphore() -> int:
        nonlocal asemaphore
        asemaphore = asemaphore or asyncio.Semaphore(10)
        async with asemaphore:
            return 1

    bulkhead = Bulkhead("bench", max_concurrent=10)(bare)
    abulkhead = Bulkhead("abench", max_concurrent=10)(abare)
    adaptive = AdaptiveLimiter("bench")(bare)
    timeout = Timeout(10.0)(abare)
    fallback = Fallback(0)(bare)
    chaos = FaultInjector("bench", error_rate=0.0)(bare)

    sync, asyn, wrappers = (
        "concurrency limit, free slot (sync)",
        "concurrency limit, free slot (async)",
        "wrappers, success path",
    )
    return [
        Case(sync, "threading.BoundedSemaphore", with_semaphore, baseline=True),
        _listeners(Case(sync, "commtel Bulkhead", bulkhead, note="(metrics on)"), on=True),
        _listeners(Case(sync, "commtel Bulkhead", bulkhead, note="(listeners off)"), on=False),
        _listeners(Case(sync, "commtel AdaptiveLimiter", adaptive, note="(metrics on)"), on=True),
        Case(asyn, "asyncio.Semaphore", afn=with_asemaphore, baseline=True),
        _listeners(Case(asyn, "commtel Bulkhead", afn=abulkhead, note="(metrics on)"), on=True),
        Case(wrappers, "bare function", bare, baseline=True),
        Case(wrappers, "commtel Fallback", fallback),
        Case(wrappers, "commtel FaultInjector (off)", chaos),
        Case(wrappers, "commtel Timeout (async)", afn=timeout),
    ]


# -- experiments ------------------------------------------------------------------------------

BASE_S, KNEE, EXPONENT, RATE = 0.1, 20.0, 1.5, 400.0
MOVES = ((20.0, 10.0), (35.0, 20.0))  # (at s, new knee)
PHASES = ((5.0, 20.0, 20.0), (25.0, 35.0, 10.0), (40.0, 50.0, 20.0))  # steady stretches: (from, to, knee)


def _dependency(knee: float = KNEE, seed: int = 1) -> SimulatedDependency:
    return SimulatedDependency(LatencyModel(base_latency_s=BASE_S, knee=knee, exponent=EXPONENT, jitter=0.1), seed=seed)


async def _load(
    call: Callable[[], Awaitable[Any]],
    duration: float,
    *,
    rate: float = RATE,
    watch: Callable[[], float] | None = None,
    at: tuple[tuple[float, Callable[[], None]], ...] = (),
) -> LoadRun:
    return await open_loop(
        call, rate=rate, duration=duration, seed=3, refused=(ConcurrencyLimitExceeded,), watch=watch, at=at
    )


def _through(limiter: Bulkhead | AdaptiveLimiter, dependency: SimulatedDependency) -> Callable[[], Awaitable[Any]]:
    return lambda: limiter.acall(dependency.acall)


async def _sweep(knee: float, unloaded: float) -> tuple[float, int, list[str]]:
    """Fixed limits around the knee, 6 s each (the first 2 s discarded): the best goodput and its limit."""
    rows, best = [], (0.0, 0)
    for factor in (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5):
        limit = max(1, round(knee * factor))
        run = await _load(_through(Bulkhead(f"sweep-{limit}", max_concurrent=limit), _dependency(knee)), 6.0)
        goodput = run.goodput(2, 6)
        best = max(best, (goodput, limit))
        rows.append(
            f"| fixed {limit} | {knee:g} | {goodput:,.0f} | | {run.p99(2, 6) * 1e3:,.1f} | {run.p99(2, 6) / unloaded:.2f} | |"
        )
    return best[0], best[1], rows


async def _adaptive_experiment() -> str:
    use_registry(CollectorRegistry())
    load_before = os.getloadavg()[0]
    quiet = await _load(_dependency().acall, 10.0, rate=RATE / 4)  # about half the knee in flight
    unloaded = quiet.p99(1, 10)
    best: dict[float, tuple[float, int]] = {}
    sweep_rows: list[str] = []
    for knee in sorted({k for _, _, k in PHASES}):
        goodput, limit, rows = await _sweep(knee, unloaded)
        best[knee] = (goodput, limit)
        sweep_rows += rows

    async def moving(
        make: Callable[[SimulatedDependency], Callable[[], Awaitable[Any]]], watch: Callable[[], float] | None = None
    ) -> LoadRun:
        dependency = _dependency()
        moves = tuple((at, lambda knee=knee: setattr(dependency.model, "knee", knee)) for at, knee in MOVES)
        return await _load(make(dependency), PHASES[-1][1], watch=watch, at=moves)

    limiter = AdaptiveLimiter("adaptive", random=random.Random(1).random)  # defaults: no limit configured
    adaptive = await moving(lambda d: _through(limiter, d), watch=lambda: limiter.limit)
    twice = await moving(lambda d: _through(Bulkhead("twice", max_concurrent=int(2 * KNEE)), d))
    timeout = Timeout(1.0, name="no-limit")
    unlimited = await moving(lambda d: lambda: timeout.acall(d.acall))

    lines = [
        "## Adaptive concurrency vs a dependency with a knee (real time)",
        (
            f"{BASE_S * 1e3:g} ms unloaded, knee {KNEE:g} -> 10 (t=20 s) -> 20 (t=35 s), latency x (n/knee)^{EXPONENT} past it; "
            f"{RATE:g} calls/s offered (Poisson); unloaded p99 {unloaded * 1e3:.1f} ms"
        ),
        "",
        "| configuration | knee | goodput/s | vs best fixed | p99 ms | p99 / unloaded | settled after the move |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in (
        ("AdaptiveLimiter() (defaults)", adaptive),
        (f"fixed {int(2 * KNEE)} (2x the first knee)", twice),
        ("no limit, 1 s timeout", unlimited),
    ):
        for index, (start, end, knee) in enumerate(PHASES):
            goodput, p99 = run.goodput(start, end), run.p99(start, end)
            settled = ""
            if index:
                move_at = MOVES[index - 1][0]
                after = run.converged_after(move_at, end, min_goodput=0.9 * best[knee][0], max_p99=1.5 * unloaded)
                settled = f"{after:.1f} s" if after != float("inf") else "never"
            latency = f"{p99 * 1e3:,.1f} | {p99 / unloaded:.2f}" if goodput else "- | -"
            lines.append(
                f"| {name} | {knee:g} | {goodput:,.0f} | {goodput / best[knee][0]:.2f} | {latency} | {settled} |"
            )
    for knee, (goodput, limit) in sorted(best.items()):
        lines.append(f"| best fixed limit (sweep) = {limit} | {knee:g} | {goodput:,.0f} | 1.00 | | | |")
    limits = ", ".join(f"{adaptive.traced(t):.0f}" for t in (19.5, 34.5, 49.5))
    after_moves = []
    for move_at, knee in MOVES:
        stretches = " ".join(
            f"{adaptive.goodput(t, t + 2) / best[knee][0]:.2f}/{adaptive.p99(t, t + 2) / unloaded:.2f}"
            for t in (move_at + 2 * i for i in range(7))
        )
        after_moves.append(
            f"after the move to knee {knee:g} (goodput vs best / p99 vs unloaded, 2-s stretches): {stretches}"
        )
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (on {os.cpu_count()} CPUs)"
    lines += ["", f"adaptive limit at the end of each phase: {limits}; {load}", *after_moves, "", "sweep:", *sweep_rows]
    return "\n".join(lines)


async def _hedging_experiment() -> str:
    use_registry(CollectorRegistry())

    def dependency() -> SimulatedDependency:
        return SimulatedDependency(
            LatencyModel(base_latency_s=0.01, knee=10_000, jitter=0.1, tail_rate=0.03, tail_factor=20), seed=5
        )

    plain = dependency()
    plain_run = await open_loop(plain.acall, rate=300, duration=10, seed=4)
    target = dependency()
    hedge = Hedge("bench", budget=RetryBudget("bench", ratio=0.1))
    hedged_run = await open_loop(lambda: hedge.acall(target.acall), rate=300, duration=10, seed=4)
    calls = len(hedged_run.completions)
    extra = target.calls / calls - 1
    p99_plain, p99_hedged = plain_run.p99(1, 10), hedged_run.p99(1, 10)
    delay = hedge.current_delay() or 0.0
    return "\n".join(
        [
            "## Hedging a long-tailed dependency (real time, same run)",
            "10 ms, 3 % of calls 20x slower; 300 calls/s for 10 s; Hedge() at the observed p95, budget 10 %",
            "",
            "| | p50 ms | p99 ms | dependency calls per call |",
            "|---|---:|---:|---:|",
            f"| plain | {_p50(plain_run) * 1e3:.1f} | {p99_plain * 1e3:.1f} | 1.00 |",
            f"| hedged | {_p50(hedged_run) * 1e3:.1f} | {p99_hedged * 1e3:.1f} | {1 + extra:.3f} |",
            "",
            (
                f"p99 cut {p99_plain / p99_hedged:.1f}x for {extra * 100:.1f} % extra calls "
                f"(hedge delay {delay * 1e3:.1f} ms)"
            ),
        ]
    )


def _p50(run: LoadRun) -> float:
    latencies = sorted(latency for at, latency in run.completions if at >= 1)
    return latencies[len(latencies) // 2]


def experiments() -> list[tuple[str, Callable[[], str]]]:
    return [
        ("adaptive concurrency", lambda: asyncio.run(_adaptive_experiment())),
        ("hedging", lambda: asyncio.run(_hedging_experiment())),
    ]
