"""The adaptive limiter: a bulkhead whose limit follows the latency of the calls it lets through."""

from __future__ import annotations

import random as _random

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

from .. import _events, _timing, _validation
from .._durations import seconds
from .._exceptions import ConfigurationError, RateLimitedByServer
from .._wrapping import WrapsCalls
from ..retries._classify import _is_timeout, status_of
from ._adaptive_core import AdaptiveCore
from ._algorithms import LimitAlgorithm, algorithm_from
from ._errors import ConcurrencyLimitExceeded
from ._events import ConcurrencyLimitChanged
from ._gated import Gated, check_limits


__all__ = ["AdaptiveLimiter", "Permit"]

_T = TypeVar("_T")

# HTTP statuses by which a dependency says it is overloaded.
_OVERLOAD_STATUSES = frozenset({429, 503})


class Permit(NamedTuple):
    """What :meth:`AdaptiveLimiter.acquire` hands to :meth:`AdaptiveLimiter.release`.

    .. versionadded:: 0.1.0
    """

    started: float
    epoch: int


def _outcome(exc: BaseException | None, result: object) -> tuple[bool, bool] | None:
    """``(dropped, has_latency)`` of a finished call, or ``None`` when it says nothing about load."""
    if exc is None:
        return (True, False) if status_of(result) in _OVERLOAD_STATUSES else (False, True)
    if not isinstance(exc, Exception):
        return None  # cancelled: the call did not finish
    if _is_timeout(exc):
        return True, True  # its latency is at least the timeout
    if isinstance(exc, RateLimitedByServer) or status_of(exc) in _OVERLOAD_STATUSES:
        return True, False
    return None


def _checked_algorithm(algorithm: str | LimitAlgorithm | Mapping[str, Any]) -> LimitAlgorithm:
    if isinstance(algorithm, Mapping):
        options = dict(algorithm)
        name = options.pop("name", None)
        if not isinstance(name, str):
            msg = f"algorithm as a table needs name = 'gradient2' | 'aimd' | 'vegas', got {algorithm!r}"
            raise ConfigurationError(msg)
        return algorithm_from(name, options)
    return algorithm_from(algorithm)


def _checked(
    *,
    algorithm: str | LimitAlgorithm | Mapping[str, Any],
    initial_limit: int,
    min_limit: int,
    max_limit: int,
    max_wait_s: float | timedelta | None,
    max_waiting: int | None,
    window_s: float | timedelta,
    min_samples: int,
    probe_interval_s: float | timedelta,
    probe_fraction: float,
) -> tuple[LimitAlgorithm, float, float, float]:
    """Raise :class:`ConfigurationError` for a bad option; return the algorithm, wait, window and probe interval."""
    for name, value in (("initial_limit", initial_limit), ("min_limit", min_limit), ("max_limit", max_limit)):
        check_limits(name, limit=value, max_wait_s=None, max_waiting=None)
    if not min_limit <= initial_limit <= max_limit:
        msg = f"need min_limit <= initial_limit <= max_limit, got {min_limit}, {initial_limit}, {max_limit}"
        raise ConfigurationError(msg)
    wait = check_limits("initial_limit", limit=initial_limit, max_wait_s=max_wait_s, max_waiting=max_waiting)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        msg = f"min_samples must be an integer >= 1, got {min_samples!r}"
        raise ConfigurationError(msg)
    if not 0 < probe_fraction < 1:
        msg = f"probe_fraction must be within (0, 1), got {probe_fraction}"
        raise ConfigurationError(msg)
    window = seconds(window_s, "window_s")
    interval = seconds(probe_interval_s, "probe_interval_s")
    if not window or not interval:
        msg = f"window_s and probe_interval_s must be > 0, got {window_s!r}, {probe_interval_s!r}"
        raise ConfigurationError(msg)
    return _checked_algorithm(algorithm), wait, window, interval


def _call_sync(limiter: AdaptiveLimiter, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    permit = limiter.acquire()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        limiter.release(permit, exc)
        raise
    limiter.release(permit, None, result)
    return result


async def _call_async(
    limiter: AdaptiveLimiter, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    permit = await limiter.aacquire()
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        limiter.release(permit, exc)
        raise
    limiter.release(permit, None, result)
    return result


class AdaptiveLimiter(Gated, WrapsCalls):
    """A concurrency limit discovered from latency: no limit to tune, no overload to cause.

    Every finished call's latency is sampled; each window (at least *min_samples* calls
    and ``max(window_s, 2 x baseline)`` long) the *algorithm* moves the limit: with the
    default ``"gradient2"`` it shrinks while latency is above the unloaded latency and
    grows while it is not, so the dependency runs just past its knee, at full throughput
    with little queueing. Calls over the limit wait up to *max_wait_s*, then raise
    :class:`~commtel.errors.ConcurrencyLimitExceeded` (load shed here rather than queued
    at the dependency). Every *probe_interval_s* the limit drops to *probe_fraction* of
    itself for a few calls to measure the unloaded latency again.

    Outcomes: a returned value is a latency sample, unless its ``.status_code`` is 429 or
    503 (a drop: overload); a timeout is a drop with its latency; HTTP 429/503 errors are
    drops; other errors and cancellations say nothing about load and are not sampled.

    Args:
        name: The ``limiter`` label of its metrics.
        algorithm: ``"gradient2"`` (latency gradient), ``"aimd"`` (loss-based), ``"vegas"``
            (queue estimate), a table ``{"name": "aimd", "backoff_ratio": 0.8, ...}``, or an
            instance of :class:`Gradient2`, :class:`AIMD`, :class:`Vegas` or your own
            :class:`LimitAlgorithm`.
        initial_limit: The limit before anything was measured.
        min_limit: The limit never goes below this.
        max_limit: The limit never goes above this.
        max_wait_s: How long a caller may wait for a slot (0: refuse at once; ``None``: no bound).
        max_waiting: Callers allowed to wait at once (``None``: no bound).
        window_s: Shortest sampling window.
        min_samples: Calls a window needs before it decides.
        probe_interval_s: How long a measured unloaded latency is trusted.
        probe_fraction: The limit while probing, as a fraction of the limit.
        random: Source of the probe jitter (a ``random()`` function), for reproducible runs.

    Use it as a decorator (sync and async functions), or call through it::

        limiter = AdaptiveLimiter("search")
        limiter.call(search, query)
        await limiter.acall(asearch, query)

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = ("_adaptive",)

    def __init__(
        self,
        name: str = "default",
        *,
        algorithm: str | LimitAlgorithm | Mapping[str, Any] = "gradient2",
        initial_limit: int = 10,
        min_limit: int = 1,
        max_limit: int = 1000,
        max_wait_s: float | timedelta | None = 0.0,
        max_waiting: int | None = None,
        window_s: float | timedelta = 0.1,
        min_samples: int = 10,
        probe_interval_s: float | timedelta = 30.0,
        probe_fraction: float = 0.5,
        random: Callable[[], float] | None = None,
    ) -> None:
        limit_algorithm, wait, window, interval = _checked(
            algorithm=algorithm,
            initial_limit=initial_limit,
            min_limit=min_limit,
            max_limit=max_limit,
            max_wait_s=max_wait_s,
            max_waiting=max_waiting,
            window_s=window_s,
            min_samples=min_samples,
            probe_interval_s=probe_interval_s,
            probe_fraction=probe_fraction,
        )
        super().__init__(name, "adaptive", initial_limit, wait, max_waiting)
        self._adaptive = AdaptiveCore(
            limit_algorithm,
            initial_limit=initial_limit,
            min_limit=min_limit,
            max_limit=max_limit,
            window_s=window,
            min_samples=min_samples,
            probe_interval_s=interval,
            probe_fraction=probe_fraction,
            probe_jitter=0.25,
            random=random or _random.random,
        )
        if listeners := _events.active_listeners():
            _events.emit(ConcurrencyLimitChanged(name, "adaptive", None, initial_limit, "created"), listeners)

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validate the constructor's keyword *options* (all but the name) without building a limiter.

        Raises:
            TypeError: An option the constructor does not take.
            ConfigurationError: An invalid value.

        .. versionadded:: 0.1.0
        """
        _validation.constructor_options(cls, "name", _checked, options)

    def __repr__(self) -> str:
        core = self._adaptive
        return (
            f"AdaptiveLimiter({self.name!r}, algorithm={core.algorithm.name!r}, limit={self.limit}, "
            f"in_flight={self.in_flight}, baseline_s={core.baseline:.4f})"
        )

    @property
    def limit(self) -> int:
        """The limit of calls in flight now.

        .. versionadded:: 0.1.0
        """
        return self._core.limit

    @property
    def baseline_s(self) -> float:
        """The unloaded latency the limiter compares against (0 until measured).

        .. versionadded:: 0.1.0
        """
        return self._adaptive.baseline

    def acquire(self) -> Permit:
        """Take a slot, waiting up to ``max_wait_s``; hand the permit to :meth:`release` when the call ended.

        Raises:
            ConcurrencyLimitExceeded: No slot within ``max_wait_s``.

        .. versionadded:: 0.1.0
        """
        try:
            self._enter()
        except ConcurrencyLimitExceeded:
            self._tick()
            raise
        return self._permit()

    async def aacquire(self) -> Permit:
        """:meth:`acquire` for async code (a cancelled waiter leaves no slot behind).

        .. versionadded:: 0.1.0
        """
        try:
            await self._aenter()
        except ConcurrencyLimitExceeded:
            self._tick()
            raise
        return self._permit()

    def _permit(self) -> Permit:
        core = self._adaptive
        epoch = core.epoch
        if core.probing:  # the probe counts its calls (under the lock); otherwise nothing to do
            with self._lock:
                epoch = core.admit()
        return Permit(_timing.monotonic(), epoch)

    def release(self, permit: Permit, exc: BaseException | None = None, result: object = None) -> None:
        """Give the slot back and sample how the call ended: its exception, or else its *result*.

        .. versionadded:: 0.1.0
        """
        now = _timing.monotonic()
        outcome = _outcome(exc, result)
        core = self._core
        changed = False
        with self._lock:
            if outcome is not None:
                dropped, has_latency = outcome
                changed = self._adaptive.sample(
                    permit.epoch,
                    now,
                    now - permit.started if has_latency else None,
                    dropped=dropped,
                    in_flight=core.in_flight,
                )
            woken = core.set_limit(self._adaptive.limit) if changed else []
            waiter = core.leave()
        self._released()
        for sleeper in woken:
            sleeper.wake()
        if waiter is not None:
            waiter.wake()
        if changed:
            self._publish()

    def _tick(self) -> None:
        """Let the core start or end a probe when it is refusing calls (no call may finish to do it)."""
        with self._lock:
            changed = self._adaptive.tick(_timing.monotonic())
        if changed:
            self._set_limit(self._adaptive.limit)
            self._publish()

    def _publish(self) -> None:
        with self._lock:
            changes, self._adaptive.changes = self._adaptive.changes, []
        if changes and (listeners := _events.active_listeners()):
            for old, new, reason, rtt_s, baseline_s in changes:
                _events.emit(
                    ConcurrencyLimitChanged(self.name, "adaptive", old, new, reason, rtt_s, baseline_s), listeners
                )
