"""Cross-platform coordination and the process-wide limiter.

:class:`GlobalRateLimiter` holds one limiter per platform and, optionally, a cap
on the sum across all of them. :func:`get_rate_limiter` is the process-wide limiter
built from a :class:`RateLimitConfig`.
"""

from __future__ import annotations

import threading

from collections.abc import Awaitable, Callable

from ._config import RateLimitConfig
from ._core import Limit, RateLimitDecision, merge
from ._limiter import RateLimiter, _await, _wait
from ._store import RateLimitBackend


__all__ = ["GlobalRateLimiter", "get_rate_limiter"]


class GlobalRateLimiter:
    """Per-platform limiters plus an optional cap on the sum of requests across platforms.

    A request for a platform is admitted only if that platform's limiter and the
    cap both admit it. The cap is peeked first, so a request the cap would refuse
    consumes nothing; if another process takes the cap's last unit in between, the
    platform's unit is spent but never more than the cap is admitted.

    Args:
        *cap: Limits on the total across platforms (none: no cap, just a registry).
        name: Name of the cap limiter (its ``limiter`` metric label).
        backend: Backend of the cap (default in-memory).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_cap", "_limiters", "_lock")

    def __init__(self, *cap: Limit, name: str = "global", backend: RateLimitBackend | str | None = None) -> None:
        self._cap = RateLimiter(*cap, name=name, backend=backend) if cap else None
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        cap = ", ".join(map(repr, self._cap.limits)) if self._cap is not None else "none"
        return f"GlobalRateLimiter(cap={cap}, platforms={sorted(self._limiters)})"

    def add_limiter(self, platform: str, limiter: RateLimiter) -> None:
        """Use *limiter* for *platform* (replacing any previous one).

        .. versionadded:: 0.1.0
        """
        with self._lock:
            self._limiters[platform.lower()] = limiter

    def get_limiter(self, platform: str) -> RateLimiter:
        """The limiter of *platform*, created from its preset on first use.

        Raises:
            ConfigurationError: No limiter was added and there is no preset for *platform*.

        .. versionadded:: 0.1.0
        """
        name = platform.lower()
        with self._lock:
            limiter = self._limiters.get(name)
            if limiter is None:
                limiter = self._limiters[name] = RateLimiter.for_platform(name)
            return limiter

    def try_acquire(self, platform: str, key: str = "default", cost: int = 1) -> RateLimitDecision:
        """Admit *cost* units for *key* on *platform* if both its limiter and the cap allow.

        .. versionadded:: 0.1.0
        """
        limiter = self.get_limiter(platform)
        cap = self._cap
        if cap is not None and (refused := self._cap_refusal(cap, platform, key, cost)) is not None:
            return refused
        decision = limiter.try_acquire(key, cost)
        if cap is None or not decision.allowed:
            return decision
        return merge(decision, cap.try_acquire(key, cost, platform=platform))

    async def atry_acquire(self, platform: str, key: str = "default", cost: int = 1) -> RateLimitDecision:
        """:meth:`try_acquire` for asyncio.

        .. versionadded:: 0.1.0
        """
        limiter = self.get_limiter(platform)
        cap = self._cap
        if cap is not None and (refused := self._cap_refusal(cap, platform, key, cost)) is not None:
            return refused
        decision = await limiter.atry_acquire(key, cost)
        if cap is None or not decision.allowed:
            return decision
        return merge(decision, await cap.atry_acquire(key, cost, platform=platform))

    def time_until_ready(self, platform: str, key: str = "default") -> float:
        """Seconds until one more request on *platform* would be admitted.

        .. versionadded:: 0.1.0
        """
        wait = self.get_limiter(platform).time_until_ready(key)
        return max(wait, self._cap.time_until_ready(key)) if self._cap is not None else wait

    def acquire(
        self, platform: str, key: str = "default", cost: int = 1, *, timeout: float | None = None
    ) -> RateLimitDecision:
        """Wait (at most *timeout*) until *platform* and the cap admit, then take the units.

        Raises:
            RateLimitExceeded: Not admissible within *timeout*.

        .. versionadded:: 0.1.0
        """
        decision = self.try_acquire(platform, key, cost)
        if decision.allowed:
            return decision
        attempt: Callable[[], RateLimitDecision] = lambda: self.try_acquire(platform, key, cost)  # noqa: E731
        return _wait(self._name(platform), platform, decision, attempt, timeout)

    async def aacquire(
        self, platform: str, key: str = "default", cost: int = 1, *, timeout: float | None = None
    ) -> RateLimitDecision:
        """:meth:`acquire` for asyncio.

        .. versionadded:: 0.1.0
        """
        decision = await self.atry_acquire(platform, key, cost)
        if decision.allowed:
            return decision
        attempt: Callable[[], Awaitable[RateLimitDecision]] = lambda: self.atry_acquire(platform, key, cost)  # noqa: E731
        return await _await(self._name(platform), platform, decision, attempt, timeout)

    @staticmethod
    def _cap_refusal(cap: RateLimiter, platform: str, key: str, cost: int) -> RateLimitDecision | None:
        """The cap's recorded refusal if it would refuse *cost* now (peeked: consumes nothing), else ``None``."""
        peeked = cap.peek(key, cost)
        return None if peeked.allowed else cap._record(peeked, cost, platform)

    def _name(self, platform: str) -> str:
        return self.get_limiter(platform).name


_singleton_lock = threading.Lock()
_singleton: tuple[RateLimitConfig, RateLimiter] | None = None


def get_rate_limiter(config: RateLimitConfig | None = None) -> RateLimiter:
    """The process-wide :class:`RateLimiter` built from a :class:`RateLimitConfig`.

    The first call creates it (from *config*, else from :meth:`RateLimitConfig.from_env`);
    later calls return it, unless they pass a *config* different from the one in
    use, which replaces it (with fresh state).

    .. versionadded:: 0.1.0
    """
    global _singleton  # noqa: PLW0603
    with _singleton_lock:
        if _singleton is None or (config is not None and config != _singleton[0]):
            used = config if config is not None else RateLimitConfig.from_env()
            _singleton = (used, RateLimiter(used, name="default"))
        return _singleton[1]
