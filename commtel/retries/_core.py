"""The sans-I/O retry core: backoff arithmetic and the per-call decision state machine.

Nothing here sleeps, awaits or reads the clock: the drivers pass ``now`` in and get a
delay (sleep that long, then try again) or ``None`` (stop: re-raise / accept) back.
A call that succeeds on its first attempt never builds a :class:`RetryCall`.
"""

from __future__ import annotations

import random

from collections.abc import Callable
from typing import Any

from .. import _events, _timing
from .. import _validation as check
from .._exceptions import RetryBudgetExhausted, RetryExhausted
from ._budget import RetryBudget
from ._classify import Classifier, retry_after_s
from ._config import RetryConfig
from ._events import RetryCallFinished, RetryDenied, RetryGaveUp, RetryPolicyCreated, RetryScheduled
from ._stats import RetryStats, stats_for


__all__ = ["RetryCall", "RetryCore", "compute_backoff"]


def compute_backoff(
    config: RetryConfig, retry: int, previous: float, rand: Callable[[], float] = random.random
) -> float:
    """Backoff before retry number *retry* (1-based), given the *previous* delay.

    Always within ``[0, max_delay]``; ``"decorrelated"`` jitter uses *previous*.
    """
    cap = config.max_delay
    mode = config.jitter_mode
    if mode == "decorrelated":
        low = config.base_delay
        high = max(low, previous * 3.0)
        return min(cap, low + (high - low) * rand())
    try:
        delay = min(cap, config.base_delay * config.backoff_factor ** (retry - 1))
    except OverflowError:
        delay = cap
    if mode == "full":
        return delay * rand()
    if mode == "equal":
        return delay / 2 + delay / 2 * rand()
    if mode == "proportional":
        spread = config.jitter_factor * delay
        return min(cap, max(0.0, delay - spread + 2 * spread * rand()))
    return delay


class RetryCore:
    """One retry configuration compiled for one operation: predicates, stats, prebuilt events.

    Subclassed by :class:`~commtel.RetryPolicy`, which adds the sync and async drivers.
    """

    __slots__ = (
        "_finished_first_try",
        "budget",
        "checks_results",
        "classifier",
        "config",
        "operation",
        "platform",
        "stats",
        "timed",
    )

    def __init__(
        self,
        config: RetryConfig,
        *,
        operation: str,
        platform: str = "",
        budget: RetryBudget | None = None,
    ) -> None:
        owner = type(self).__name__
        self.config: RetryConfig = check.instance(config, "config", RetryConfig, owner=owner)
        self.operation = check.text(operation, "operation", owner=owner)
        self.platform = check.text(platform, "platform", owner=owner)
        self.budget: RetryBudget | None = check.instance(budget, "budget", RetryBudget, owner=owner, optional=True)
        self.classifier = Classifier(config)
        self.checks_results = self.classifier.checks_results
        #: Whether a call must read the clock up front (deadline or budget need a start time).
        self.timed = config.deadline is not None or budget is not None
        self.stats: RetryStats = stats_for(operation)
        self._finished_first_try = _events.Binding(RetryCallFinished(operation, platform, "success_first_try"))
        if listeners := _events.active_listeners():
            _events.emit(RetryPolicyCreated(operation, platform), listeners)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.operation!r}, {self.config!r})"

    def first_try(self) -> None:
        """Account a call that succeeded on its first attempt (the hot path: no allocation)."""
        if self.budget is not None:
            self.budget.record_call(_timing.monotonic())
        self.stats.first_try += 1
        self._finished_first_try()

    def begin(self, started: float) -> RetryCall:
        """State for a call whose first attempt failed (*started*: when the call began).

        Every call ends up in exactly one of :meth:`first_try` and this, so both deposit
        the call into the retry budget.
        """
        if self.budget is not None:
            self.budget.record_call(started)
        return RetryCall(self, started)

    def finished(self, result: str) -> None:
        """Emit the end of a call that needed the slow path."""
        if listeners := _events.active_listeners():
            _events.emit(RetryCallFinished(self.operation, self.platform, result), listeners)


class RetryCall:
    """Decisions for one call after its first failure: retry after a delay, or stop."""

    __slots__ = ("attempts", "core", "delay", "error", "started")

    def __init__(self, core: RetryCore, started: float) -> None:
        self.core = core
        self.started = started
        self.attempts = 0
        self.delay = 0.0
        self.error: BaseException | None = None

    def on_error(self, exc: BaseException, now: float) -> float | None:
        """After *exc*: seconds to wait before the next attempt, or ``None`` to re-raise *exc*.

        Raises:
            RetryBudgetExhausted: The retry budget denied the retry (``from exc``).
        """
        self.attempts += 1
        self.error = exc
        reason = self.core.classifier.error(exc)
        if reason is None:
            self.core.stats.not_retryable += 1
            self.core.finished("not_retryable")
            return None
        return self._next(reason, exc, now)

    def on_result(self, value: Any, reason: str, now: float, *, return_exhausted: bool = False) -> float | None:
        """After a result the policy rejected for *reason*: seconds to wait.

        Returns:
            The delay, or ``None`` when retries ran out and *return_exhausted* asks for
            the last result rather than an exception.

        Raises:
            RetryExhausted: Retries ran out; ``last_result`` is *value*, ``__cause__`` the
                last exception seen, if any.
            RetryBudgetExhausted: The retry budget denied the retry.
        """
        self.attempts += 1
        delay = self._next(reason, value, now)
        if delay is None and not return_exhausted:
            raise RetryExhausted(self.core.operation, self.attempts, value) from self.error
        return delay

    def succeeded(self) -> None:
        """The latest attempt succeeded."""
        self.core.stats.after_retry += 1
        self.core.finished("success_after_retry")

    def _stop(self, reason: str, stopped_by: str) -> None:
        core = self.core
        core.stats.exhausted += 1
        if listeners := _events.active_listeners():
            _events.emit(RetryGaveUp(core.operation, core.platform, self.attempts, reason, stopped_by), listeners)
        core.finished("exhausted")

    def _next(self, reason: str, outcome: object, now: float) -> float | None:
        core = self.core
        config = core.config
        if self.attempts >= config.max_attempts:
            self._stop(reason, "attempts")
            return None
        hint = retry_after_s(outcome) if config.respect_retry_after else None
        if hint is not None:
            delay = min(hint, config.max_retry_after)
        else:
            delay = compute_backoff(config, self.attempts, self.delay, _timing.jitter)
        if config.deadline is not None and now + delay - self.started > config.deadline:
            self._stop(reason, "deadline")
            return None
        if core.budget is not None and not core.budget.try_acquire(now):
            core.stats.budget_denied += 1
            if listeners := _events.active_listeners():
                _events.emit(RetryDenied(core.operation, core.platform, core.budget.name, reason), listeners)
            self._stop(reason, "budget")
            msg = f"retry budget {core.budget.name!r} denied retry {self.attempts} of {core.operation!r}"
            error = RetryBudgetExhausted(msg)
            error.__cause__ = self.error  # the failure being retried (on_error stored it), if any
            raise error
        self.delay = delay
        core.stats.retries += 1
        core.stats.backoff_s += delay
        if listeners := _events.active_listeners():
            _events.emit(RetryScheduled(core.operation, core.platform, self.attempts, delay, reason), listeners)
        return delay
