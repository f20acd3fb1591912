"""The rate limiter: thin sync and async drivers over the sans-I/O quotas and a store.

:class:`RateLimiter` reads the clock, asks its store for a decision, emits events
when someone listens and, for the blocking calls, sleeps. ``acquire`` and
``aacquire`` share everything except the sleep (:func:`_wait` / :func:`_await`).
"""

# ruff: noqa: FBT003 - RateLimitDecision(True/False, ...) and commit flags are positional on the hot path
from __future__ import annotations

import logging
import math

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import overload

from .. import _events, _timing
from .. import _validation as check
from .._exceptions import ConfigurationError, RateLimitExceeded
from ._config import RateLimitConfig, preset_limits
from ._core import Limit, RateLimitDecision, compile_quota
from ._events import RateLimitDecided, RateLimiterCreated, RateLimitWaited, ServerThrottled
from ._feedback import Headers, ServerFeedback, parse_feedback
from ._store import Plan, RateLimitBackend, RateLimitStore


__all__ = ["RateLimitSlot", "RateLimiter"]

_log = logging.getLogger("commtel.ratelimit")
# Platform labels a limiter keeps a bound "admitted" event for; beyond them, plain events (memory stays bounded).
_MAX_BOUND_PLATFORMS = 64


def _skipped(decision: RateLimitDecision) -> RateLimitDecision:
    """In testing mode a wait is skipped: the call is admitted without consuming."""
    return RateLimitDecision(True, 0.0, decision.remaining, decision.limit, decision.reset_s)


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else _timing.monotonic() + max(0.0, timeout)


def _check_deadline(name: str, decision: RateLimitDecision, deadline: float) -> float:
    """The delay to sleep, or raise if admission would come after *deadline*."""
    delay = decision.retry_after_s
    if _timing.monotonic() + delay > deadline:
        raise RateLimitExceeded(name, delay)
    return delay


def _waited(name: str, platform: str, start: float) -> None:
    if listeners := _events.active_listeners():
        _events.emit(RateLimitWaited(name, platform, _timing.monotonic() - start), listeners)


def _wait(
    name: str,
    platform: str,
    decision: RateLimitDecision,
    attempt: Callable[[], RateLimitDecision],
    timeout: float | None,
) -> RateLimitDecision:
    """Sleep and retry until admitted; raise :class:`RateLimitExceeded` past *timeout*."""
    start = _timing.monotonic()
    deadline = _deadline(timeout)
    while not decision.allowed:
        _timing.sleep(_check_deadline(name, decision, deadline))
        decision = _skipped(decision) if _timing.is_testing() else attempt()
    _waited(name, platform, start)
    return decision


async def _await(
    name: str,
    platform: str,
    decision: RateLimitDecision,
    attempt: Callable[[], Awaitable[RateLimitDecision]],
    timeout: float | None,
) -> RateLimitDecision:
    """:func:`_wait` for asyncio: the same loop with ``await`` on the sleep and the attempt."""
    start = _timing.monotonic()
    deadline = _deadline(timeout)
    while not decision.allowed:
        await _timing.asleep(_check_deadline(name, decision, deadline))
        decision = _skipped(decision) if _timing.is_testing() else await attempt()
    _waited(name, platform, start)
    return decision


class RateLimiter:
    """Rate-limit requests per key: token bucket, exact sliding windows, or both at once.

    Build it from limits (all must hold), from a :class:`RateLimitConfig` (per-platform
    and per-endpoint budgets, see there) or from a preset (:meth:`for_platform`).
    State lives in *backend*: in this process by default, or Redis for many processes.

    Non-blocking: :meth:`try_acquire` (a :class:`RateLimitDecision`, true when admitted).
    Blocking with a timeout: :meth:`acquire`, :meth:`aacquire`, :meth:`limit` (a context
    manager, sync and async). Inspecting without consuming: :meth:`peek`,
    :meth:`time_until_ready`. Server feedback: :meth:`feedback`. A rejected request
    consumes nothing.

    Args:
        *limits: :class:`TokenBucket`/:class:`SlidingWindow` objects (at most one bucket),
            or a single :class:`RateLimitConfig`.
        name: Limiter name: the ``limiter`` metric label and the shared-state namespace.
        platform: Default ``platform`` metric label (calls may pass their own).
        backend: Where state lives: a fresh :class:`~commtel.backends.MemoryBackend` if omitted,
            a ``redis://`` URL (a :class:`~commtel.backends.RedisBackend` with defaults), or a backend.
        max_server_wait_s: Longest wait a server's feedback may impose; longer ones are clamped.

    Raises:
        ConfigurationError: Invalid limits, config or *max_server_wait_s*.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_admitted",
        "_config",
        "_default",
        "_max_server_wait_s",
        "_plans",
        "_store",
        "limits",
        "name",
        "platform",
    )

    @overload
    def __init__(
        self,
        config: RateLimitConfig,
        /,
        *,
        name: str = "default",
        platform: str = "",
        backend: RateLimitBackend | str | None = None,
        max_server_wait_s: float = 3600.0,
    ) -> None: ...

    @overload
    def __init__(
        self,
        limit: Limit,
        /,
        *limits: Limit,
        name: str = "default",
        platform: str = "",
        backend: RateLimitBackend | str | None = None,
        max_server_wait_s: float = 3600.0,
    ) -> None: ...

    def __init__(
        self,
        *limits: Limit | RateLimitConfig,
        name: str = "default",
        platform: str = "",
        backend: RateLimitBackend | str | None = None,
        max_server_wait_s: float = 3600.0,
    ) -> None:
        max_server_wait_s = check.duration(max_server_wait_s, "max_server_wait_s", owner="RateLimiter", positive=True)
        name = check.text(name, "name", owner="RateLimiter")
        platform = check.text(platform, "platform", owner="RateLimiter")
        if backend is not None and not isinstance(backend, str) and not callable(getattr(backend, "bind", None)):
            msg = f"RateLimiter.backend must be a Redis URL, a RateLimitBackend (MemoryBackend, RedisBackend) or None, got {backend!r}"
            raise ConfigurationError(msg)
        config = limits[0] if len(limits) == 1 and isinstance(limits[0], RateLimitConfig) else None
        if config is None and any(isinstance(limit, RateLimitConfig) for limit in limits):
            msg = "RateLimiter takes either one RateLimitConfig or limit objects, not both"
            raise ConfigurationError(msg)
        if backend is None:
            from ._memory import MemoryBackend

            backend = MemoryBackend()
        elif isinstance(backend, str):
            from ._redis import RedisBackend

            backend = RedisBackend(backend)
        self.name = name
        self.platform = platform
        # platform label -> the bound event of the common decision there (one unit admitted):
        # delivered straight to the metric child instead of dispatching a new event per call.
        self._admitted: dict[str, _events.Binding] = {
            platform: _events.Binding(RateLimitDecided(name, platform, True, 1, 0.0)),
        }
        self._config = config
        self._max_server_wait_s = float(max_server_wait_s)
        self._store: RateLimitStore = backend.bind(name)
        if listeners := _events.active_listeners():
            _events.emit(RateLimiterCreated(name, platform, self._store.backend), listeners)
        self._plans: dict[tuple[str, str | None], Plan] = {}
        if config is None:
            plain: list[Limit] = [limit for limit in limits if not isinstance(limit, RateLimitConfig)]
            quota = compile_quota(plain)
            self.limits: tuple[Limit, ...] = quota.limits
            self._default = self._store.plan([("", quota)])
        else:
            self._default = self._plan_for(None, None)
            self.limits = self._default.scopes[0][1].limits

    @classmethod
    def for_platform(
        cls, platform: str, *, name: str | None = None, backend: RateLimitBackend | str | None = None
    ) -> RateLimiter:
        """A limiter with the published limits of *platform* (see :data:`~commtel.ratelimit.PRESETS`).

        Raises:
            ConfigurationError: Unknown platform.

        .. versionadded:: 0.1.0
        """
        limits = preset_limits(platform)
        return cls(*limits, name=name or platform.lower(), platform=platform.lower(), backend=backend)

    def __repr__(self) -> str:
        what = "config" if self._config is not None else ", ".join(map(repr, self.limits))
        return f"RateLimiter({what}, name={self.name!r}, backend={self._store.backend})"

    @property
    def store(self) -> RateLimitStore:
        """The bound store holding this limiter's state."""
        return self._store

    # -- plans ------------------------------------------------------------------------------

    def _plan_for(self, platform: str | None, endpoint: str | None) -> Plan:
        config = self._config
        if config is None:
            return self._default
        names = config.scope_names(platform, endpoint)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plans[names] = self._store.plan(config.scopes(platform, endpoint))
        return plan

    def _check_cost(self, plan: Plan, cost: int) -> None:
        if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= plan.capacity:
            msg = f"cost must be an integer from 1 to {plan.capacity} (the smallest burst or limit), got {cost!r}"
            raise ConfigurationError(msg)

    def _emit(
        self, decision: RateLimitDecision, cost: int, platform: str | None, listeners: tuple[_events.Listener, ...]
    ) -> None:
        label = platform or self.platform
        if decision.allowed and cost == 1:
            admitted = self._admitted.get(label)
            if admitted is None and len(self._admitted) < _MAX_BOUND_PLATFORMS:
                admitted = self._admitted[label] = _events.Binding(RateLimitDecided(self.name, label, True, 1, 0.0))
            if admitted is not None:
                admitted()
                return
        _events.emit(RateLimitDecided(self.name, label, decision.allowed, cost, decision.retry_after_s), listeners)

    def _record(self, decision: RateLimitDecision, cost: int, platform: str | None) -> RateLimitDecision:
        if listeners := _events.active_listeners():
            self._emit(decision, cost, platform, listeners)
        return decision

    # -- non-blocking ---------------------------------------------------------------------------

    def try_acquire(
        self, key: str = "default", cost: int = 1, *, endpoint: str | None = None, platform: str | None = None
    ) -> RateLimitDecision:
        """Admit *cost* units for *key* now, or say how long to wait; never blocks.

        Args:
            key: The budget's owner (user, account, token id …); never logged or labelled.
            cost: Units this request takes.
            endpoint: Endpoint for a config's endpoint budgets.
            platform: Platform for a config's platform budgets and the metric label.

        Returns:
            The decision; its cost is consumed only when ``allowed``.

        Raises:
            ConfigurationError: *cost* below 1 or above the smallest burst/limit.

        .. versionadded:: 0.1.0
        """
        plan = self._default if endpoint is None and platform is None else self._plan_for(platform, endpoint)
        if cost != 1:
            self._check_cost(plan, cost)
        decision = self._store.decide(plan, key, _timing.monotonic(), cost)
        # Inlined _record (a read of the listeners global): this is the hot path.
        listeners = _events._listeners
        if listeners is None:
            listeners = _events.active_listeners()
        if listeners:
            self._emit(decision, cost, platform, listeners)
        return decision

    async def atry_acquire(
        self, key: str = "default", cost: int = 1, *, endpoint: str | None = None, platform: str | None = None
    ) -> RateLimitDecision:
        """:meth:`try_acquire` for asyncio (awaits the store, e.g. Redis).

        .. versionadded:: 0.1.0
        """
        plan = self._default if endpoint is None and platform is None else self._plan_for(platform, endpoint)
        if cost != 1:
            self._check_cost(plan, cost)
        decision = await self._store.adecide(plan, key, _timing.monotonic(), cost)
        return self._record(decision, cost, platform)

    def peek(
        self, key: str = "default", cost: int = 1, *, endpoint: str | None = None, platform: str | None = None
    ) -> RateLimitDecision:
        """What :meth:`try_acquire` would decide now, without consuming anything.

        .. versionadded:: 0.1.0
        """
        plan = self._plan_for(platform, endpoint)
        if cost != 1:
            self._check_cost(plan, cost)
        return self._store.decide(plan, key, _timing.monotonic(), cost, commit=False)

    def time_until_ready(
        self, key: str = "default", cost: int = 1, *, endpoint: str | None = None, platform: str | None = None
    ) -> float:
        """Seconds until *cost* units for *key* would be admitted (``0.0``: now); nothing is consumed.

        .. versionadded:: 0.1.0
        """
        return self.peek(key, cost, endpoint=endpoint, platform=platform).retry_after_s

    # -- blocking -----------------------------------------------------------------------------

    def acquire(
        self,
        key: str = "default",
        cost: int = 1,
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
        platform: str | None = None,
    ) -> RateLimitDecision:
        """Wait until *cost* units for *key* are admitted, then take them.

        Raises before sleeping when admission would come later than *timeout*
        seconds from now (``None``: wait as long as needed; ``0``: never wait).
        Under :func:`commtel.testing.set_testing` waits are skipped and the call is
        admitted without consuming.

        Returns:
            The admitting decision.

        Raises:
            RateLimitExceeded: Not admissible within *timeout* (carries ``retry_after_s``).
            ConfigurationError: Invalid *cost*.

        .. versionadded:: 0.1.0
        """
        decision = self.try_acquire(key, cost, endpoint=endpoint, platform=platform)
        if decision.allowed:
            return decision
        return _wait(
            self.name,
            platform or self.platform,
            decision,
            lambda: self.try_acquire(key, cost, endpoint=endpoint, platform=platform),
            timeout,
        )

    async def aacquire(
        self,
        key: str = "default",
        cost: int = 1,
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
        platform: str | None = None,
    ) -> RateLimitDecision:
        """:meth:`acquire` for asyncio: awaits instead of blocking the event loop.

        .. versionadded:: 0.1.0
        """
        decision = await self.atry_acquire(key, cost, endpoint=endpoint, platform=platform)
        if decision.allowed:
            return decision
        return await _await(
            self.name,
            platform or self.platform,
            decision,
            lambda: self.atry_acquire(key, cost, endpoint=endpoint, platform=platform),
            timeout,
        )

    def limit(
        self,
        key: str = "default",
        cost: int = 1,
        *,
        timeout: float | None = None,
        endpoint: str | None = None,
        platform: str | None = None,
    ) -> RateLimitSlot:
        """A context manager (``with`` or ``async with``) that acquires on entry.

        .. versionadded:: 0.1.0
        """
        return RateLimitSlot(self, key, cost, timeout=timeout, endpoint=endpoint, platform=platform)

    # -- server feedback and reset ----------------------------------------------------------

    def _feedback(self, status: int, headers: Headers, platform: str | None) -> ServerFeedback:
        feedback = parse_feedback(status, headers, now_wall=_timing.wall(), max_wait_s=self._max_server_wait_s)
        for problem in feedback.problems:
            _log.warning("rate limiter %r: server sent a bad rate-limit value: %s", self.name, problem)
        if feedback.delay_s and (listeners := _events.active_listeners()):
            _events.emit(
                ServerThrottled(
                    self.name, platform or self.platform, status, feedback.delay_s, feedback.source, feedback.clamped
                ),
                listeners,
            )
        return feedback

    def feedback(self, key: str, status: int, headers: Headers, *, platform: str | None = None) -> float:
        """Tell the limiter how the server answered a request made for *key*.

        A 429 (or a 503 with ``Retry-After``), or any answer saying nothing remains,
        blocks every caller of *key* (in every process sharing the backend) until the
        server's reset. Hostile values are clamped to ``max_server_wait_s`` and logged.

        Returns:
            The seconds *key* is now blocked for (``0.0``: not blocked).

        .. versionadded:: 0.1.0
        """
        delay = self._feedback(status, headers, platform).delay_s
        if delay:
            self._store.block(key, _timing.monotonic(), delay)
        return delay or 0.0

    async def afeedback(self, key: str, status: int, headers: Headers, *, platform: str | None = None) -> float:
        """:meth:`feedback` for asyncio.

        .. versionadded:: 0.1.0
        """
        delay = self._feedback(status, headers, platform).delay_s
        if delay:
            await self._store.ablock(key, _timing.monotonic(), delay)
        return delay or 0.0

    def reset(self, key: str) -> None:
        """Forget everything about *key*: consumed units in every budget and server blocks.

        .. versionadded:: 0.1.0
        """
        self._store.reset(key)


class RateLimitSlot:
    """Acquires from a limiter on entry (``with`` or ``async with``); the decision is ``as`` target.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_cost", "_endpoint", "_key", "_limiter", "_platform", "_timeout")

    def __init__(
        self,
        limiter: RateLimiter,
        key: str,
        cost: int,
        *,
        timeout: float | None,
        endpoint: str | None,
        platform: str | None,
    ) -> None:
        self._limiter = limiter
        self._key = key
        self._cost = cost
        self._timeout = timeout
        self._endpoint = endpoint
        self._platform = platform

    def __enter__(self) -> RateLimitDecision:
        return self._limiter.acquire(
            self._key, self._cost, timeout=self._timeout, endpoint=self._endpoint, platform=self._platform
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aenter__(self) -> RateLimitDecision:
        return await self._limiter.aacquire(
            self._key, self._cost, timeout=self._timeout, endpoint=self._endpoint, platform=self._platform
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
