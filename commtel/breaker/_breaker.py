"""Public circuit breaker: :class:`CircuitBreaker` (in-process or shared on Redis).

The breaker's lock is held only to decide (admit / record), never while the protected
call runs, so threads through one closed breaker run in parallel.
"""

from __future__ import annotations

import inspect
import logging
import threading

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Literal, NamedTuple, TypeVar

from .. import _events, _timing
from .. import _validation as check
from .._exceptions import BackendError, CircuitOpenError, ConfigurationError
from .._wrapping import WrapsCalls
from ..backends._redis import DEFAULT_COOLDOWN_S, DEFAULT_TIMEOUT_S, positive_seconds
from ._core import (
    CLOSED,
    FAILURE,
    IGNORED,
    REJECTED,
    SLOW,
    SUCCESS,
    BreakerCore,
    CountWindow,
    TimeWindow,
)
from ._events import (
    CircuitBackendFailed,
    CircuitBreakerCreated,
    CircuitCallRecorded,
    CircuitRejected,
    CircuitStateChanged,
)


__all__ = ["Admission", "CircuitBreaker", "StateListener"]

_T = TypeVar("_T")
_log = logging.getLogger("commtel.breaker")

#: ``listener(breaker, from_state, to_state)``, called after each transition, outside the lock.
StateListener = Callable[["CircuitBreaker", str, str], None]


# The drivers take wrapt's arguments (instance unused: fn is already bound), so a decorated
# function reaches them without an extra frame. Closed and local, admission is two
# attribute reads and a successful call takes no lock.
def _call_sync(breaker: CircuitBreaker, fn: Callable[..., _T], instance: object, args: Any, kwargs: Any) -> _T:  # noqa: ARG001
    core = breaker._core
    started = _timing.monotonic() if breaker._timed else 0.0
    ticket = core.generation
    if breaker._shared is not None or core.state is not CLOSED:
        ticket = breaker._admit(started or _timing.monotonic())
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        breaker._record(ticket, breaker._error_outcome(exc))
        raise
    outcome = breaker._result_outcome(result, started)
    if outcome is not SUCCESS or not breaker._closed_success():  # the hot path: nothing to fold in, no lock
        breaker._record(ticket, outcome)
    return result


async def _call_async(
    breaker: CircuitBreaker,
    fn: Callable[..., Awaitable[_T]],
    _instance: object,
    args: Any,
    kwargs: Any,
) -> _T:
    core = breaker._core
    started = _timing.monotonic() if breaker._timed else 0.0
    ticket = core.generation
    if breaker._shared is not None or core.state is not CLOSED:
        ticket = await breaker._aadmit(started or _timing.monotonic())
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        await breaker._arecord(ticket, breaker._error_outcome(exc))
        raise
    outcome = breaker._result_outcome(result, started)
    if outcome is not SUCCESS or not breaker._closed_success():  # the hot path: nothing to fold in, no lock
        await breaker._arecord(ticket, outcome)
    return result


class CircuitBreaker(WrapsCalls):
    """Stop calling a failing dependency for a while, then probe it before trusting it again.

    Closed, it counts outcomes and opens when *failure_threshold* consecutive calls failed,
    or when at least *failure_rate_threshold* of the calls in the window failed (once the
    window holds *minimum_calls*). Open, it rejects calls with
    :class:`~commtel.CircuitOpenError` (whose ``retry_after_s`` says when it will probe)
    until *recovery_timeout* passed; then it admits *half_open_max_calls* probes. When all
    of them succeed, and *health_check* (if any) returns true, it closes; any failure opens
    it again. With *redis*, every process using the same *name* shares one state, changed
    atomically by Lua scripts on the Redis server (timed by the server's clock).

    Args:
        name: The ``breaker`` label, and the shared state's key.
        failure_threshold: Consecutive failures that open it (``None``: off).
        failure_rate_threshold: Failure share in [0, 1] that opens it (``None``: off).
        window_size: The rate window: calls (``window_type="count"``) or seconds (``"time"``).
        window_type: ``"count"`` (last N calls) or ``"time"`` (last N seconds).
        minimum_calls: Calls the window must hold before the rate is judged.
        slow_call_duration: A call slower than this counts as a failure (result ``slow``).
        recovery_timeout: How long it stays open before probing.
        half_open_max_calls: Probes admitted in half-open; all must succeed to close.
        failure_on: Exception types that count as failures; others count as successes.
        excluded_exceptions: Exception types that count as nothing.
        failure_on_result: Predicate on results that count as failures (default: a
            response whose ``.status_code`` is 5xx).
        health_check: Called (no arguments) after the probes succeeded; must return true
            (sync, or awaitable for the async paths) before the breaker closes.
        listeners: State listeners, ``listener(breaker, from_state, to_state)``.
        redis: Redis URL (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
            ``redis+cluster://``) or redis-py client (sync or asyncio, any topology) to share the
            state across processes. Nothing connects at construction.
        on_backend_error: When Redis fails: ``"local"`` (default) decides on this process's
            own state until Redis answers again; ``"reject"`` fails closed, rejecting calls
            with :class:`~commtel.CircuitOpenError`. Either way the failure is counted
            (``commtel_circuit_backend_errors_total``) and never waits past *redis_timeout*;
            recording an outcome never raises.
        redis_timeout: The longest one Redis call waits (for a free connection, then the reply).
        redis_cooldown: After a Redis timeout, calls decide by *on_backend_error* at once for
            this long (then one probes Redis): a hung Redis costs one timeout per cool-down.

    Use it as a decorator (sync and async functions), or call through it::

        breaker = CircuitBreaker("payments", failure_threshold=5, recovery_timeout=30)
        breaker.call(charge, order)
        await breaker.acall(acharge, order)

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = (
        "__weakref__",
        "_core",
        "_events",
        "_excluded",
        "_failure_on",
        "_failure_on_result",
        "_health_check",
        "_listeners",
        "_local",
        "_lock",
        "_on_backend_error",
        "_shared",
        "_slow_s",
        "_success",
        "_timed",
        "name",
    )

    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int | None = 5,
        failure_rate_threshold: float | None = None,
        window_size: float = 100,
        window_type: Literal["count", "time"] = "count",
        minimum_calls: int = 10,
        slow_call_duration: float | timedelta | None = None,
        recovery_timeout: float | timedelta = 30.0,
        half_open_max_calls: int = 1,
        failure_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        excluded_exceptions: Iterable[type[BaseException]] = (),
        failure_on_result: Callable[[Any], bool] | None = None,
        health_check: Callable[[], bool | Awaitable[bool]] | None = None,
        listeners: Iterable[StateListener] = (),
        redis: str | Any | None = None,
        on_backend_error: Literal["local", "reject"] = "local",
        redis_timeout: float | timedelta = DEFAULT_TIMEOUT_S,
        redis_cooldown: float | timedelta = DEFAULT_COOLDOWN_S,
    ) -> None:
        recovery_s, slow_s = _checked(
            failure_threshold=failure_threshold,
            failure_rate_threshold=failure_rate_threshold,
            window_size=window_size,
            window_type=window_type,
            minimum_calls=minimum_calls,
            slow_call_duration=slow_call_duration,
            recovery_timeout=recovery_timeout,
            half_open_max_calls=half_open_max_calls,
            on_backend_error=on_backend_error,
            redis_timeout=redis_timeout,
            redis_cooldown=redis_cooldown,
            failure_on=failure_on,
            failure_on_result=failure_on_result,
            health_check=health_check,
        )
        self.name = check.text(name, "name", owner="CircuitBreaker")
        self._failure_on = failure_on
        self._excluded = tuple(excluded_exceptions)
        self._failure_on_result = failure_on_result
        self._slow_s = slow_s
        self._health_check = health_check
        self._listeners: tuple[StateListener, ...] = tuple(listeners)
        self._on_backend_error = on_backend_error
        self._lock = threading.Lock()
        window: CountWindow | TimeWindow | None = None
        if failure_rate_threshold is not None:
            window = CountWindow(int(window_size)) if window_type == "count" else TimeWindow(float(window_size))
        self._core = BreakerCore(
            failure_threshold=failure_threshold,
            failure_rate_threshold=failure_rate_threshold,
            window=window,
            minimum_calls=minimum_calls,
            recovery_s=recovery_s,
            half_open_max_calls=half_open_max_calls,
            has_health_check=health_check is not None,
        )
        self._events = {
            result: _events.Binding(CircuitCallRecorded(name, result)) for result in (SUCCESS, FAILURE, SLOW)
        }
        self._success = self._events[SUCCESS]
        # Whether a call needs its start time (slow-call threshold); admission reads the clock itself.
        self._timed = self._slow_s is not None
        self._shared: Any = None
        # Local with no rate window: a successful closed call has nothing to fold in.
        self._local = window is None and redis is None
        if redis is not None:
            from ._redis import RedisBreakerState

            self._shared = RedisBreakerState(
                name,
                redis,
                self._core,
                window_type=window_type,
                window_size=window_size,
                timeout_s=positive_seconds(redis_timeout, "redis_timeout"),
                cooldown_s=positive_seconds(redis_cooldown, "redis_cooldown"),
            )
        if listeners_now := _events.active_listeners():
            _events.emit(CircuitBreakerCreated(name, None if redis is None else "redis"), listeners_now)
            _events.emit(CircuitStateChanged(name, None, self.state, "created"), listeners_now)

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validate the constructor's keyword *options* (all but the name) without building a breaker.

        Side-effect free: nothing is announced (no ``created`` event, no metric) and no
        Redis connection is made, so configuration can be checked when it is loaded.

        Raises:
            TypeError: An option the constructor does not take.
            ConfigurationError: An invalid value.

        .. versionadded:: 0.1.0
        """
        check.constructor_options(cls, "name", _checked, options)

    def __repr__(self) -> str:
        core = self._core
        where = ", redis" if self._shared is not None else ""
        return (
            f"CircuitBreaker({self.name!r}, state={self.state!r}, failure_threshold={core.failure_threshold}, "
            f"failure_rate_threshold={core.failure_rate_threshold}, recovery_timeout={core.recovery_s}s, "
            f"half_open_max_calls={core.half_open_max_calls}{where})"
        )

    # -- state ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (read from Redis when shared).

        .. versionadded:: 0.1.0
        """
        if self._shared is not None:
            try:
                state: str = self._shared.read_state()
            except BackendError as exc:
                self._backend_failed(exc, "read", may_reject=False)
                return self._core.state
            self._publish()
            return state
        return self._core.state

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(breaker, from_state, to_state)`` after each transition.

        .. versionadded:: 0.1.0
        """
        self._listeners = (*self._listeners, listener)

    def force_open(self) -> None:
        """Open now and stay open (rejecting every call) until :meth:`reset`.

        .. versionadded:: 0.1.0
        """
        self._force("open", self._core.force_open)

    def reset(self) -> None:
        """Close now and forget past failures.

        .. versionadded:: 0.1.0
        """
        self._force("closed", self._core.reset)

    def _force(self, state: str, move: Callable[[float], None]) -> None:
        """Force *state* on the local core and the shared state (if any), then publish the change once."""
        with self._lock:
            move(_timing.monotonic())
            if self._shared is not None:
                self._core.changes.clear()  # the shared state's reply reports the transition
        if self._shared is not None:
            self._shared.force(state)
        self._publish()

    # -- the decision steps (used by the drivers and by composite guards) -----------------

    def _publish(self) -> None:
        core = self._core
        if not core.changes:
            return
        with self._lock:
            changes, core.changes = core.changes, []
        listeners = _events.active_listeners()
        for from_state, to_state, reason in changes:
            if listeners:
                _events.emit(CircuitStateChanged(self.name, from_state, to_state, reason), listeners)
            for listener in self._listeners:
                try:
                    listener(self, from_state, to_state)
                except Exception:
                    _log.exception("state listener %r of breaker %r failed", listener, self.name)

    def _backend_failed(self, exc: BackendError, operation: str, *, may_reject: bool) -> None:
        """Count a shared-state failure (log the first of a streak); fail closed when so configured, else go local."""
        if listeners := _events.active_listeners():
            _events.emit(CircuitBackendFailed(self.name, "redis", operation, self._on_backend_error), listeners)
        self._shared.distrust()
        if not self._shared.failing:
            self._shared.failing = True
            _log.warning(
                "breaker %r: redis %s failed (%s); deciding %s until it answers again",
                self.name,
                operation,
                exc.__cause__ or exc,
                "by rejecting" if self._on_backend_error == "reject" else "locally",
            )
        if may_reject and self._on_backend_error == "reject":
            raise CircuitOpenError(self.name, self._core.recovery_s) from exc

    def _reject(self, now: float) -> CircuitOpenError:
        if self._shared is not None:
            retry_after, state = self._shared.retry_after, self._shared.last_state
        else:
            with self._lock:
                retry_after, state = self._core.retry_after(now), self._core.state
        if listeners := _events.active_listeners():
            _events.emit(CircuitRejected(self.name, state, retry_after), listeners)
        return CircuitOpenError(self.name, retry_after)

    def _error_outcome(self, exc: BaseException) -> str:
        if not isinstance(exc, Exception) or isinstance(exc, self._excluded):
            return IGNORED
        return FAILURE if isinstance(exc, self._failure_on) else SUCCESS

    def _result_outcome(self, result: object, started: float) -> str:
        predicate = self._failure_on_result
        if predicate is None:
            status = getattr(result, "status_code", None)
            failed = isinstance(status, int) and 500 <= status < 600
        else:
            failed = predicate(result)
        if failed:
            return FAILURE
        if self._slow_s is not None and _timing.monotonic() - started >= self._slow_s:
            return SLOW
        return SUCCESS

    def _admit(self, now: float) -> int:
        """Admission off the fast path (not closed, or shared); raises when rejected."""
        shared = self._shared
        ticket: int | None = None
        if shared is not None and (ticket := shared.local_ticket()) is None:
            try:
                ticket = shared.admit()
            except BackendError as exc:
                self._backend_failed(exc, "admit", may_reject=True)
        return self._admitted(ticket, now)

    async def _aadmit(self, now: float) -> int:
        shared = self._shared
        ticket: int | None = None
        if shared is not None and (ticket := shared.local_ticket()) is None:
            try:
                ticket = await shared.aadmit()
            except BackendError as exc:
                self._backend_failed(exc, "admit", may_reject=True)
        return self._admitted(ticket, now)

    def _admitted(self, ticket: int | None, now: float) -> int:
        """Decide on this process's own state unless the shared state did (*ticket*); raise when rejected."""
        if ticket is None:
            with self._lock:
                ticket = self._core.admit(now)
        if self._core.changes:
            self._publish()
        if ticket == REJECTED:
            raise self._reject(now)
        return ticket

    def _closed_success(self) -> bool:
        """Count a success that changes nothing (local, closed, no failure pending) without the lock."""
        core = self._core
        if self._local and not core.consecutive and core.state is CLOSED:
            self._success()
            return True
        return False

    def _record(self, ticket: int, outcome: str) -> None:
        if outcome is not IGNORED:
            self._events[outcome]()
        core = self._core
        check: bool | None = None
        if self._shared is not None:
            try:
                check = self._shared.record(ticket, outcome)
            except BackendError as exc:
                self._backend_failed(exc, "record", may_reject=False)
        if check is None:
            with self._lock:
                check = core.record(ticket, outcome, _timing.monotonic())
        if check:
            healthy = self._run_health_check()
            if inspect.isawaitable(healthy):
                healthy.close()  # type: ignore[attr-defined]
                msg = f"breaker {self.name!r}: an async health_check needs the async paths (acall)"
                raise ConfigurationError(msg)
            self._health_checked(ticket, healthy=bool(healthy))
        if core.changes:
            self._publish()

    async def _arecord(self, ticket: int, outcome: str) -> None:
        if outcome is not IGNORED:
            self._events[outcome]()
        core = self._core
        check: bool | None = None
        if self._shared is not None:
            try:
                check = await self._shared.arecord(ticket, outcome)
            except BackendError as exc:
                self._backend_failed(exc, "record", may_reject=False)
        if check is None:
            with self._lock:
                check = core.record(ticket, outcome, _timing.monotonic())
        if check:
            healthy = self._run_health_check()
            if inspect.isawaitable(healthy):
                healthy = await healthy
            self._health_checked(ticket, healthy=bool(healthy))
        if core.changes:
            self._publish()

    def _run_health_check(self) -> object:
        assert self._health_check is not None  # noqa: S101 - only asked for when configured
        try:
            return self._health_check()
        except Exception:
            _log.warning("health check of breaker %r raised; staying open", self.name, exc_info=True)
            return False

    def _health_checked(self, ticket: int, *, healthy: bool) -> None:
        if self._shared is not None:
            try:
                self._shared.health_checked(ticket, healthy=healthy)
            except BackendError as exc:
                self._backend_failed(exc, "health", may_reject=False)
            else:
                return
        with self._lock:
            self._core.health_checked(ticket, healthy=healthy, now=_timing.monotonic())

    # -- for composite guards that run the call themselves -----------------------------

    def admit(self) -> Admission:
        """Admit one call, or raise; hand the result to :meth:`record` when the call ended.

        Raises:
            CircuitOpenError: The breaker rejected the call.

        .. versionadded:: 0.1.0
        """
        now = _timing.monotonic()
        core = self._core
        ticket = core.generation
        if self._shared is not None or core.state is not CLOSED:
            ticket = self._admit(now)
        return Admission(ticket, now)

    async def aadmit(self) -> Admission:
        """:meth:`admit` for async code (awaits Redis when shared).

        .. versionadded:: 0.1.0
        """
        now = _timing.monotonic()
        core = self._core
        ticket = core.generation
        if self._shared is not None or core.state is not CLOSED:
            ticket = await self._aadmit(now)
        return Admission(ticket, now)

    def record(self, admission: Admission, exc: BaseException | None = None, result: object = None) -> None:
        """Record how an admitted call ended: its exception, or else its *result*.

        Runs the health check when this outcome completed the half-open probes.

        .. versionadded:: 0.1.0
        """
        outcome = self._error_outcome(exc) if exc is not None else self._result_outcome(result, admission.started)
        if outcome is not SUCCESS or not self._closed_success():
            self._record(admission.ticket, outcome)

    async def arecord(self, admission: Admission, exc: BaseException | None = None, result: object = None) -> None:
        """:meth:`record` for async code; awaits an async health check.

        .. versionadded:: 0.1.0
        """
        outcome = self._error_outcome(exc) if exc is not None else self._result_outcome(result, admission.started)
        if outcome is not SUCCESS or not self._closed_success():
            await self._arecord(admission.ticket, outcome)

    def release(self, admission: Admission) -> None:
        """Give back an admission whose call never ran (say, a rate limiter refused it).

        It counts as nothing: no outcome, no metric; a half-open probe slot is freed.

        .. versionadded:: 0.1.0
        """
        self._record(admission.ticket, IGNORED)

    async def arelease(self, admission: Admission) -> None:
        """:meth:`release` for async code (awaits Redis when shared).

        .. versionadded:: 0.1.0
        """
        await self._arecord(admission.ticket, IGNORED)


def _checked(
    *,
    failure_threshold: int | None,
    failure_rate_threshold: float | None,
    window_size: float,
    window_type: str,
    minimum_calls: int,
    slow_call_duration: float | timedelta | None,
    recovery_timeout: float | timedelta,
    half_open_max_calls: int,
    on_backend_error: str,
    redis_timeout: float | timedelta,
    redis_cooldown: float | timedelta,
    failure_on: object = Exception,
    failure_on_result: object = None,
    health_check: object = None,
) -> tuple[float, float | None]:
    """Raise :class:`ConfigurationError` for an invalid option; return ``(recovery_s, slow_s)``."""
    owner = "CircuitBreaker"
    check.whole(failure_threshold, "failure_threshold", owner=owner, optional=True)
    if failure_rate_threshold is not None:
        check.fraction(failure_rate_threshold, "failure_rate_threshold", owner=owner, strict=True)
    check.one_of(window_type, "window_type", ("count", "time"), owner=owner)
    if window_type == "count":
        check.whole(window_size, "window_size", owner=owner, hint="calls in the count window")
    else:
        check.duration(window_size, "window_size", owner=owner, positive=True)
    check.whole(minimum_calls, "minimum_calls", owner=owner)
    check.whole(half_open_max_calls, "half_open_max_calls", owner=owner)
    check.one_of(on_backend_error, "on_backend_error", ("local", "reject"), owner=owner)
    check.exception_types(failure_on, "failure_on", owner=owner)
    check.callable_(failure_on_result, "failure_on_result", owner=owner, optional=True)
    check.callable_(health_check, "health_check", owner=owner, optional=True)
    positive_seconds(redis_timeout, "CircuitBreaker.redis_timeout")
    positive_seconds(redis_cooldown, "CircuitBreaker.redis_cooldown")
    recovery_s = check.duration(recovery_timeout, "recovery_timeout", owner=owner)
    return recovery_s, check.duration(slow_call_duration, "slow_call_duration", owner=owner, optional=True)


class Admission(NamedTuple):
    """What :meth:`CircuitBreaker.admit` hands to :meth:`CircuitBreaker.record`.

    .. versionadded:: 0.1.0
    """

    ticket: int
    started: float
