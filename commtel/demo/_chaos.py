"""Chaos drills: the conditions the dashboards and alert rules watch for, produced on a schedule.

A drill starts every *period* seconds (first at *phase*) and, when it has a duration,
is undone that many seconds later: an outage is a window of time, not a count of failed
requests, so a breaker that opens during it probes, fails, and closes once it is over.
Every drill happens within the first minute.
"""

from __future__ import annotations

import threading

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from ._world import DemoWorld

__all__ = ["Chaos", "Drill"]


@dataclass(frozen=True)
class Drill:
    """One recurring condition: *start* it every *period_s* (first at *phase_s*), *stop* it after *duration_s*.

    ``skip`` (when given) is asked before each start: a drill the alert drills would
    disturb sits out while they run.
    """

    name: str
    period_s: float
    phase_s: float
    start: Callable[[DemoWorld], None]
    stop: Callable[[DemoWorld], None] | None = None
    duration_s: float = 0.0
    skip: Callable[[DemoWorld], bool] | None = None


def _chat_outage(world: DemoWorld) -> None:
    world.chat.error_rate = 1.0


def _chat_recovers(world: DemoWorld) -> None:
    world.chat.error_rate = world.CHAT_ERROR_RATE


def _chat_squeeze(world: DemoWorld) -> None:
    world.chat.limit = 3


def _chat_quota_back(world: DemoWorld) -> None:
    world.chat.limit = world.CHAT_LIMIT


def _social_burst(world: DemoWorld) -> None:
    world.social.fail_next(12, 502)


def _token_failure(world: DemoWorld) -> None:
    world.social.fail_next_token(2, 503)
    world.social.expire_tokens()


def _token_revoke(world: DemoWorld) -> None:
    world.social.expire_tokens()


def _mail_failure(world: DemoWorld) -> None:
    world.mail.fail_next(2)


def _redis_down(world: DemoWorld) -> None:
    world.redis.stop()


def _redis_up(world: DemoWorld) -> None:
    world.redis.start()


def _alert_drills_running(world: DemoWorld) -> bool:
    return world.alerts is not None and world.alerts.running


DRILLS = (
    # 6 s of 503s: the chat breaker (5 failures, 2 s recovery) opens, its half-open probes
    # fail until the outage ends, and it closes within seconds of it: open -> half-open -> closed.
    Drill("chat outage", 30.0, 4.0, _chat_outage, _chat_recovers, 6.0),
    # The chat quota drops to 3/s for 3 s: server-side 429s, retried after Retry-After.
    Drill("chat quota squeeze", 20.0, 2.0, _chat_squeeze, _chat_quota_back, 3.0),
    # 12 x 502 on the social API: retries, some exhausted.
    Drill("social 5xx burst", 30.0, 12.0, _social_burst),
    # The token endpoint fails twice and every token is dropped: OAuth errors, then recovery.
    Drill("token endpoint down", 25.0, 8.0, _token_failure, skip=_alert_drills_running),
    # Every token forgotten: 401 -> refresh -> replay.
    Drill("tokens revoked", 15.0, 6.0, _token_revoke, skip=_alert_drills_running),
    # The relay answers 451 twice: SMTP retries.
    Drill("SMTP 451", 10.0, 3.0, _mail_failure),
    # redis-server stopped for 5 s: the shared limiter and retry budget fail open, the shared breaker decides locally.
    Drill("redis outage", 40.0, 16.0, _redis_down, _redis_up, 5.0, skip=_alert_drills_running),
)


def _due(elapsed: float, tick: float, period: float, phase: float) -> bool:
    """Whether a drill of *period* and *phase* starts in the tick that ends at *elapsed*."""
    before = elapsed - tick
    return elapsed >= phase and int((elapsed - phase) // period) != int((before - phase) // period)


class Chaos:
    """Runs the drills from a background thread until stopped."""

    def __init__(self, world: DemoWorld, drills: tuple[Drill, ...] = DRILLS, tick_s: float = 0.5) -> None:
        self.world = world
        self.drills = drills
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-chaos", daemon=True)
        self._undo: dict[str, float] = {}  # drill name -> when to stop it

    def start(self) -> None:
        """Start the drills."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the drills, undoing the ones in progress (Redis comes back, quotas return)."""
        self._stop.set()
        self._thread.join(timeout=10)
        for drill in self.drills:
            if drill.name in self._undo and drill.stop is not None:
                drill.stop(self.world)
        self._undo.clear()

    def _run(self) -> None:
        world, tick, elapsed = self.world, self.tick_s, 0.0
        while not self._stop.wait(tick):
            elapsed += tick
            for drill in self.drills:
                undo_at = self._undo.get(drill.name)
                if undo_at is not None:
                    if elapsed >= undo_at and drill.stop is not None:
                        drill.stop(world)
                        del self._undo[drill.name]
                        world.stats.note(f"drill over: {drill.name}")
                elif _due(elapsed, tick, drill.period_s, drill.phase_s) and not (drill.skip and drill.skip(world)):
                    drill.start(world)
                    world.stats.bump(f"drill: {drill.name}")
                    if drill.stop is not None:
                        self._undo[drill.name] = elapsed + drill.duration_s
