"""A discrete-event simulation (virtual time) of open-loop traffic through a concurrency limit.

Calls arrive as a Poisson process at *rate*; each is admitted by the gate (or refused,
never waiting), takes the latency the :class:`LatencyModel` gives for the calls in flight,
and on completion is fed to the adaptive core. Everything is seeded: the same arguments
give the same result, in milliseconds of CPU per simulated second.
"""

from __future__ import annotations

import heapq
import random

from commtel.concurrency import AdaptiveLimiter
from commtel.concurrency._gate import GateCore
from commtel.simulator import LatencyModel, LoadRun


def simulate(
    model: LatencyModel,
    *,
    rate: float,
    duration: float,
    limit: int | None = None,
    adaptive: AdaptiveLimiter | None = None,
    knee_changes: tuple[tuple[float, float], ...] = (),
    seed: int = 1,
) -> LoadRun:
    """Run *duration* virtual seconds; *limit* fixes the gate, *adaptive* makes it adaptive, neither: no limit.

    An adaptive limiter's sans-I/O parts (its gate and its adaptive core) are driven
    directly, with virtual time; give it a seeded ``random`` for a reproducible run.
    """
    rng = random.Random(seed)
    core = adaptive._adaptive if adaptive is not None else None
    gate = adaptive._core if adaptive is not None else GateCore(limit or 1 << 30)
    run = LoadRun(trace=[(0.0, gate.limit)])
    events: list[tuple[float, int, str, tuple[float, int]]] = []
    seq = 0

    def push(at: float, kind: str, data: tuple[float, int] = (0.0, 0)) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, data))

    push(rng.expovariate(rate), "arrive")
    for at, knee in knee_changes:
        push(at, "knee", (knee, 0))
    in_flight = 0
    while events:
        now, _, kind, data = heapq.heappop(events)
        if now > duration:
            break
        if kind == "knee":
            model.knee = data[0]
        elif kind == "arrive":
            push(now + rng.expovariate(rate), "arrive")
            if not gate.enter():
                run.refused.append(now)
                if core is not None and core.tick(now):
                    gate.set_limit(core.limit)
                    run.trace.append((now, core.limit))
                continue
            in_flight += 1
            latency = model.latency(in_flight, rng.gauss(0.0, 1.0), rng.random())
            push(now + latency, "done", (now, core.admit() if core else 0))
        else:
            started, epoch = data
            run.completions.append((now, now - started))
            if core is not None and core.sample(epoch, now, now - started, dropped=False, in_flight=gate.in_flight):
                gate.set_limit(core.limit)
                run.trace.append((now, core.limit))
            gate.leave()
            in_flight -= 1
    return run
