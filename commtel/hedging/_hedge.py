"""Hedged requests: when an attempt is slow, start another; the first good answer wins.

For idempotent async calls only (the call may run twice). The hedge delay is fixed, or the
observed quantile (default p95) of this hedge's latencies, so about one call in twenty is
hedged. Hedged attempts are drawn from a :class:`~commtel.RetryBudget` when one is given,
so hedging never multiplies the load on a dependency that is slow for everyone.
"""

from __future__ import annotations

import asyncio
import functools
import inspect

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import wrapt

from .. import _events, _timing, _validation
from .._durations import seconds
from .._exceptions import ConfigurationError
from ..retries._budget import RetryBudget
from ._core import LatencyQuantile
from ._events import HedgeCallFinished, HedgeCreated, HedgeDenied, HedgeLaunched


__all__ = ["Hedge"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def _server_error(result: object) -> bool:
    status = getattr(result, "status_code", None)
    return isinstance(status, int) and 500 <= status < 600


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a cancelled loser's outcome so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()


class Hedge:
    """Start a second attempt when the first is slow; return the first good answer, cancel the rest.

    Args:
        name: The ``hedge`` label of its metrics.
        delay: Fixed hedge delay (seconds or ``timedelta``); ``None`` (default): the observed
            *quantile* of this hedge's latencies, once *min_samples* are known (no hedging
            on delay before that).
        quantile: The latency quantile used as the delay, in (0, 1).
        max_hedges: Hedged attempts per call at most (each after another delay).
        budget: A :class:`~commtel.RetryBudget` every hedged attempt must draw from (share
            the one your retries use); a denied hedge is counted and the call goes on.
        min_samples: Latencies needed before the observed quantile is used.
        window_s: How far back latencies count for the quantile.
        failure_on_result: Predicate on results that count as failures (default: a
            ``.status_code`` of 5xx): the next attempt is launched at once, and if every
            attempt failed the last result is returned.

    When every running attempt failed (raised, or returned a failing result), the next
    hedged attempt starts at once, within *max_hedges* and the budget. When all attempts
    failed, the last exception is raised (or the last failing result returned).

    Example::

        hedge = Hedge("search", budget=RetryBudget("search", ratio=0.1))
        response = await hedge.acall(client.get, "/search", params=query)

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_finished", "_latency", "budget", "delay_s", "failure_on_result", "max_hedges", "name")

    def __init__(
        self,
        name: str = "default",
        *,
        delay: float | timedelta | None = None,
        quantile: float = 0.95,
        max_hedges: int = 1,
        budget: RetryBudget | None = None,
        min_samples: int = 20,
        window_s: float | timedelta = 60.0,
        failure_on_result: Callable[[Any], bool] | None = None,
    ) -> None:
        delay_s, window = _checked(
            delay=delay, quantile=quantile, max_hedges=max_hedges, min_samples=min_samples, window_s=window_s
        )
        self.name = name
        self.delay_s = delay_s
        self.max_hedges = max_hedges
        self.budget = budget
        self.failure_on_result = failure_on_result or _server_error
        self._latency = LatencyQuantile(quantile, window_s=window, min_samples=min_samples)
        self._finished = {
            result: _events.Binding(HedgeCallFinished(name, result)) for result in ("primary", "hedge", "failed")
        }
        if listeners := _events.active_listeners():
            _events.emit(HedgeCreated(name), listeners)

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validate the constructor's keyword *options* (all but the name) without building a hedge.

        .. versionadded:: 0.1.0
        """
        _validation.constructor_options(cls, "name", _checked, options)

    def __repr__(self) -> str:
        delay = f"{self.delay_s:g}s" if self.delay_s is not None else f"p{self._latency.quantile * 100:g}"
        return f"Hedge({self.name!r}, delay={delay}, max_hedges={self.max_hedges}, budget={self.budget!r})"

    def current_delay(self) -> float | None:
        """The delay after which a call is hedged now (``None``: not enough latencies known yet).

        .. versionadded:: 0.1.0
        """
        if self.delay_s is not None:
            return self.delay_s
        return self._latency.value(_timing.monotonic())

    async def acall(self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Await ``fn(*args, **kwargs)``, hedged; *fn* is called once per attempt.

        .. versionadded:: 0.1.0
        """
        return await _hedged(self, fn, None, args, kwargs)

    def __call__(self, fn: _F, /) -> _F:
        """Decorate an async function or method (hedging needs attempts that can run side by side).

        .. versionadded:: 0.1.0
        """
        if not inspect.iscoroutinefunction(fn):
            msg = f"Hedge {self.name!r} can only decorate async functions, got {fn!r}"
            raise ConfigurationError(msg)
        return wrapt.FunctionWrapper(fn, functools.partial(_hedged, self))  # type: ignore[return-value]

    def _may_launch(self, attempt: int, elapsed: float, reason: str, now: float) -> bool:
        """Ask the budget for one more attempt and announce the outcome."""
        budget = self.budget
        if budget is not None and not budget.try_acquire(now):
            if listeners := _events.active_listeners():
                _events.emit(HedgeDenied(self.name, budget.name), listeners)
            return False
        if listeners := _events.active_listeners():
            _events.emit(HedgeLaunched(self.name, attempt, elapsed, reason), listeners)
        return True


def _checked(
    *, delay: float | timedelta | None, quantile: float, max_hedges: int, min_samples: int, window_s: float | timedelta
) -> tuple[float | None, float]:
    if not 0 < quantile < 1:
        msg = f"quantile must be within (0, 1), got {quantile}"
        raise ConfigurationError(msg)
    if isinstance(max_hedges, bool) or not isinstance(max_hedges, int) or max_hedges < 1:
        msg = f"max_hedges must be an integer >= 1, got {max_hedges!r}"
        raise ConfigurationError(msg)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        msg = f"min_samples must be an integer >= 1, got {min_samples!r}"
        raise ConfigurationError(msg)
    window = seconds(window_s, "window_s")
    if not window:
        msg = f"window_s must be > 0, got {window_s!r}"
        raise ConfigurationError(msg)
    return seconds(delay, "delay"), window


class _Race:
    """The attempts of one hedged call: their state and every decision; the driver only awaits."""

    __slots__ = ("delay", "failed", "hedge", "hedges", "next_at", "pending", "primary", "started", "starts")

    def __init__(self, hedge: Hedge, primary: asyncio.Task[Any], now: float, delay: float | None) -> None:
        self.hedge = hedge
        self.primary = primary
        self.started = now
        self.delay = delay
        self.starts = {primary: now}
        self.pending = {primary}
        self.hedges = 0
        self.next_at = None if delay is None else now + delay
        self.failed: tuple[BaseException | None, object] = (None, None)

    def wait_s(self, now: float) -> float | None:
        """How long to wait for an attempt before hedging (``None``: no more hedging on delay)."""
        if self.next_at is None or self.hedges >= self.hedge.max_hedges:
            return None
        return max(0.0, self.next_at - now)

    def settle(self, done: set[asyncio.Task[Any]], now: float) -> tuple[bool, Any]:
        """Judge the finished attempts: ``(True, result)`` for the first good answer."""
        hedge = self.hedge
        for task in done:
            self.pending.discard(task)
            if task.cancelled():
                self.failed = (asyncio.CancelledError(), None)
                continue
            error = task.exception()
            if error is not None:
                self.failed = (error, None)
                continue
            result = task.result()
            if hedge.failure_on_result(result):
                self.failed = (None, result)
                continue
            hedge._latency.add(now - self.starts[task], now)
            for loser in self.pending:  # still running: their latency is at least this long
                hedge._latency.add(now - self.starts[loser], now)
            hedge._finished["primary" if task is self.primary else "hedge"]()
            return True, result
        return False, None

    def hedge_reason(self, done: set[asyncio.Task[Any]]) -> str | None:
        """Why to launch another attempt now: ``"delay"``, ``"failure"``, or ``None`` (keep waiting)."""
        if not done:
            return "delay"
        return None if self.pending else "failure"

    def may_launch(self, reason: str, now: float) -> bool:
        """Whether one more attempt may start (attempts left, budget); stops hedging on delay if not."""
        if self.hedges < self.hedge.max_hedges and self.hedge._may_launch(
            self.hedges + 1, now - self.started, reason, now
        ):
            return True
        self.next_at = None
        return False

    def launched(self, task: asyncio.Task[Any], now: float) -> None:
        self.hedges += 1
        self.starts[task] = now
        self.pending.add(task)
        self.next_at = None if self.delay is None else now + self.delay

    def give_up(self) -> Any:
        """Every attempt failed: raise the last error, or return the last failing result."""
        self.hedge._finished["failed"]()
        error, value = self.failed
        if error is not None:
            raise error
        return value

    def cancel_losers(self) -> None:
        for task in self.pending:
            task.cancel()
            task.add_done_callback(_consume)


async def _hedged(hedge: Hedge, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any) -> _T:
    """The hedging driver: launch attempts as tasks, wait for the first good one, cancel the rest."""
    loop = asyncio.get_running_loop()
    now = _timing.monotonic()
    if hedge.budget is not None:
        hedge.budget.record_call(now)
    race = _Race(hedge, loop.create_task(fn(*args, **kwargs)), now, hedge.current_delay())  # type: ignore[arg-type]
    try:
        while True:
            wait = race.wait_s(_timing.monotonic())
            done, _ = await asyncio.wait(race.pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            now = _timing.monotonic()
            won, result = race.settle(done, now)
            if won:
                return result  # type: ignore[no-any-return]
            reason = race.hedge_reason(done)
            if reason is None:
                continue
            if race.may_launch(reason, now):
                race.launched(loop.create_task(fn(*args, **kwargs)), now)  # type: ignore[arg-type]
            elif not race.pending:
                return race.give_up()  # type: ignore[no-any-return]
    finally:
        race.cancel_losers()
