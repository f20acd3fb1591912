"""Chaos drills: the conditions the alert rules watch for, produced on a schedule."""

from __future__ import annotations

import threading

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from ._world import DemoWorld

__all__ = ["Chaos"]

# (period in seconds, phase) of each drill: all of them happen within the first minute.
_CHAT_BURST = (20.0, 4.0)  # 30 x 503: the chat breaker opens, probes, recovers
_SOCIAL_BURST = (30.0, 12.0)  # 12 x 502 on the social API: retries, some exhausted
_TOKEN_FAILURE = (25.0, 8.0)  # the token endpoint fails twice: OAuth errors
_TOKEN_REVOKE = (15.0, 6.0)  # every token forgotten: 401 -> refresh -> replay
_MAIL_FAILURE = (10.0, 3.0)  # the relay answers 451 twice: SMTP retries
_REDIS_OUTAGE = (40.0, 16.0)  # redis-server stopped for 5 s: the limiter fails open
_REDIS_DOWN_S = 5.0
_CHAT_SQUEEZE = (20.0, 2.0)  # the chat quota drops to 3/s for 3 s: server-side 429s, retried
_CHAT_SQUEEZE_S = 3.0


def _due(elapsed: float, tick: float, drill: tuple[float, float]) -> bool:
    """Whether *drill* fires in the tick that ends at *elapsed*."""
    period, phase = drill
    before = elapsed - tick
    return int((elapsed - phase) // period) != int((before - phase) // period) and elapsed >= phase


class Chaos:
    """Runs the drills from a background thread until stopped."""

    def __init__(self, world: DemoWorld, tick_s: float = 0.5) -> None:
        self.world = world
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-chaos", daemon=True)
        self._redis_back_at: float | None = None
        self._chat_quota: tuple[float, int] | None = None  # (restore at, quota)

    def start(self) -> None:
        """Start the drills."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the drills (and bring Redis back if a drill stopped it)."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        world, tick, elapsed = self.world, self.tick_s, 0.0
        while not self._stop.wait(tick):
            elapsed += tick
            if _due(elapsed, tick, _CHAT_BURST):
                world.chat.fail_next(30, 503)
                world.stats.bump("drill: chat 5xx burst")
            if _due(elapsed, tick, _SOCIAL_BURST):
                world.social.fail_next(12, 502)
                world.stats.bump("drill: social 5xx burst")
            if _due(elapsed, tick, _TOKEN_FAILURE):
                world.social.fail_next_token(2, 503)
                world.social.expire_tokens()
                world.stats.bump("drill: token endpoint down")
            elif _due(elapsed, tick, _TOKEN_REVOKE):
                world.social.expire_tokens()
                world.stats.bump("drill: tokens revoked")
            if _due(elapsed, tick, _MAIL_FAILURE):
                world.mail.fail_next(2)
                world.stats.bump("drill: SMTP 451")
            self._redis_drill(elapsed, tick)
            self._squeeze_drill(elapsed, tick)

    def _squeeze_drill(self, elapsed: float, tick: float) -> None:
        chat = self.world.chat
        if self._chat_quota is not None and elapsed >= self._chat_quota[0]:
            chat.limit = self._chat_quota[1]
            self._chat_quota = None
        elif self._chat_quota is None and _due(elapsed, tick, _CHAT_SQUEEZE):
            self._chat_quota = (elapsed + _CHAT_SQUEEZE_S, chat.limit)
            chat.limit = 3
            self.world.stats.bump("drill: chat quota squeeze")

    def _redis_drill(self, elapsed: float, tick: float) -> None:
        redis = self.world.redis
        if self._redis_back_at is not None and elapsed >= self._redis_back_at:
            redis.start()
            self._redis_back_at = None
        elif redis.proc is not None and _due(elapsed, tick, _REDIS_OUTAGE):
            redis.stop()
            self._redis_back_at = elapsed + _REDIS_DOWN_S
            self.world.stats.bump("drill: redis outage")
