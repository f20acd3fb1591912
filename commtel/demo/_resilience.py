"""The demo's resilience drill: adaptive limit, bulkhead, timeout, hedging, fallback and fault injection.

Two simulated dependencies run in-process: ``inventory`` slows down past a knee of 8
calls in flight (its knee moves every 20 s, so the adaptive limiter has something to
follow), and ``search`` has a long tail (3 % of calls 20x slower) that hedging cuts.
Each burst sends 24 concurrent calls: inventory calls through the adaptive limiter,
searches hedged (each attempt under a timeout) with a fallback, and reports through a
bulkhead and a timeout with a fallback. A game-day fault injector adds latency and
errors to a few reports. Each call is a span of its own, so slot waits carry it as their
exemplar and injected faults are marked on it.
"""

from __future__ import annotations

import asyncio
import random
import time

from typing import TYPE_CHECKING

from ..chaos import FaultInjector
from ..concurrency import AdaptiveLimiter, Bulkhead, ConcurrencyLimitExceeded
from ..fallback import Fallback
from ..hedging import Hedge
from ..retries import RetryBudget
from ..simulator import LatencyModel, SimulatedDependency
from ..telemetry import start_span
from ..timeouts import Timeout


if TYPE_CHECKING:
    from ._world import DemoWorld

__all__ = ["ResilienceDrill", "resilience_burst"]

_KNEES = (8.0, 4.0, 12.0)


class ResilienceDrill:
    """The dependencies and guards of the drill, shared by every worker."""

    def __init__(self) -> None:
        self.inventory = SimulatedDependency(LatencyModel(base_latency_s=0.02, knee=_KNEES[0], exponent=1.5), seed=3)
        self.search = SimulatedDependency(
            LatencyModel(base_latency_s=0.01, knee=1000, tail_rate=0.03, tail_factor=20), seed=5
        )
        self.limiter = AdaptiveLimiter("inventory", initial_limit=4)
        self.bulkhead = Bulkhead("reports", max_concurrent=4, max_wait_s=0.05)
        self.hedge = Hedge("search", budget=RetryBudget("search-hedges", ratio=0.1))
        self.search_timeout = Timeout(0.25, name="search", scope="attempt")
        self.search_fallback = Fallback([], name="search")
        self.report_timeout = Timeout(0.2, name="report")
        self.report_fallback = Fallback(None, name="report")
        self.chaos = FaultInjector("game-day", error_rate=0.03, latency_rate=0.05, latency_s=0.3)
        self._started = time.monotonic()

    def move_knee(self) -> None:
        """Every 20 s the inventory service's knee moves (a deploy, a noisy neighbour)."""
        phase = int((time.monotonic() - self._started) / 20) % len(_KNEES)
        self.inventory.model.knee = _KNEES[phase]

    async def inventory_call(self) -> float:
        return await self.limiter.acall(self.inventory.acall)

    async def search_call(self) -> object:
        attempt = lambda: self.search_timeout.acall(self.search.acall)  # noqa: E731 - one attempt, hedged
        return await self.search_fallback.acall(self.hedge.acall, attempt)

    async def report_call(self) -> object:
        async def report() -> float:
            return await self.report_timeout.acall(self.chaos.acall, self.search.acall)

        return await self.report_fallback.acall(self.bulkhead.acall, report)


def resilience_burst(world: DemoWorld) -> None:
    """24 concurrent calls to the drill's dependencies, then a short pause."""
    drill = world.resilience
    drill.move_knee()
    asyncio.run(_burst(world, drill))
    world.stop_event.wait(0.02)


async def _burst(world: DemoWorld, drill: ResilienceDrill) -> None:
    rng = random.Random()

    async def one() -> None:
        started = time.monotonic()
        kind = rng.choice(("inventory", "inventory", "search", "report"))
        ok = True
        try:
            with start_span(f"resilience.{kind}", attributes={"commtel.platform": kind}):
                await getattr(drill, f"{kind}_call")()
        except ConcurrencyLimitExceeded:
            world.stats.bump(f"{kind} calls shed by a concurrency limit")
            ok = False
        except Exception:  # injected faults not answered by a fallback
            ok = False
        world.stats.record_call("resilience", time.monotonic() - started, ok=ok)

    await asyncio.gather(*(one() for _ in range(24)))
