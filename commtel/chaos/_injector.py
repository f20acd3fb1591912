"""Fault injection for tests and game days: latency, errors and replaced outcomes at a rate.

Faults are decided per call (:func:`~commtel.chaos._core.plan`), announced as events (so
each is counted and marked on its span), then acted out: the latency is slept, the error
raised, the outcome returned instead of calling. Settings are one immutable object
swapped whole, so switching faults on or off at run time is safe from any thread.
"""

from __future__ import annotations

import copy
import functools
import random as _random

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from .. import _events, _timing, _validation
from .._durations import seconds
from .._exceptions import CommtelError, ConfigurationError
from .._wrapping import WrapsCalls
from ._core import ChaosSettings, FaultPlan, plan
from ._events import FaultInjected, FaultInjectorCreated


__all__ = ["FaultInjector", "InjectedFault"]

_T = TypeVar("_T")


class InjectedFault(CommtelError, ConnectionError):
    """The error a fault injector raises by default (a :class:`ConnectionError`, so it is retried).

    .. versionadded:: 0.1.0
    """

    def __init__(self, injector: str) -> None:
        self.injector = injector
        super().__init__(f"fault injected by {injector!r}")


def _error_factory(name: str, error: Any) -> Callable[[], BaseException]:
    if error is None:
        return functools.partial(InjectedFault, name)
    if isinstance(error, type) and issubclass(error, BaseException):
        return functools.partial(error, f"fault injected by {name!r}")
    if isinstance(error, BaseException):
        return functools.partial(copy.copy, error)
    if callable(error):
        return error  # type: ignore[no-any-return]
    msg = f"error must be an exception class, an exception, or a function returning one, got {error!r}"
    raise ConfigurationError(msg)


def _checked_settings(settings: ChaosSettings, *, has_outcome: bool) -> ChaosSettings:
    for field in ("latency_rate", "error_rate", "outcome_rate"):
        rate = getattr(settings, field)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            msg = f"{field} must be within [0, 1], got {rate!r}"
            raise ConfigurationError(msg)
    latency = seconds(settings.latency_s, "latency_s")
    if settings.outcome_rate > 0 and not has_outcome:
        msg = "outcome_rate needs outcome= (a function returning the value to return instead)"
        raise ConfigurationError(msg)
    return replace(settings, latency_s=latency or 0.0, enabled=bool(settings.enabled))


def _configured(
    name: str,
    *,
    latency_rate: float,
    latency_s: float | timedelta,
    error_rate: float,
    error: Any,
    outcome_rate: float,
    outcome: Any,
    enabled: bool,
) -> tuple[Callable[[], BaseException], ChaosSettings]:
    """The error factory and validated settings of an injector; :class:`ConfigurationError` when invalid."""
    factory = _error_factory(name, error)
    if not (outcome is None or callable(outcome)):
        msg = f"outcome must be a function returning the value to answer with, got {outcome!r}"
        raise ConfigurationError(msg)
    settings = ChaosSettings(
        enabled=enabled,
        latency_rate=latency_rate,
        latency_s=latency_s,  # type: ignore[arg-type]
        error_rate=error_rate,
        outcome_rate=outcome_rate,
    )
    return factory, _checked_settings(settings, has_outcome=outcome is not None)


def _call_sync(injector: FaultInjector, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    replaced, value = injector.inject()
    return value if replaced else fn(*args, **kwargs)


async def _call_async(
    injector: FaultInjector, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    replaced, value = await injector.ainject()
    return value if replaced else await fn(*args, **kwargs)


class FaultInjector(WrapsCalls):
    """Inject latency, errors and outcomes into calls at a rate, switchable at run time.

    Per call, with its own random draw each: *latency_rate* of calls are delayed by
    *latency_s* first; then *error_rate* of calls raise *error* instead of running, or
    else *outcome_rate* of calls return ``outcome()`` instead of running. Every injected
    fault is counted (``commtel_faults_injected_total``) and marked on the current span
    (attribute ``commtel.chaos.injected``, event ``commtel.chaos.fault``).

    Args:
        name: The ``injector`` label.
        latency_rate: Share of calls delayed, in [0, 1].
        latency_s: Added delay (seconds or ``timedelta``).
        error_rate: Share of calls that raise, in [0, 1].
        error: Exception class (built with a message naming the injector), exception
            (copied per call) or function returning one; default :class:`InjectedFault`.
        outcome_rate: Share of calls answered by *outcome* without running, in [0, 1].
        outcome: Function returning the value to answer with (e.g. a 503 response).
        enabled: Start switched on (``injector.enabled = False`` switches it off).
        random: Source of the draws (a ``random()`` function), for reproducible runs.

    Example::

        chaos = FaultInjector("payments", error_rate=0.1, latency_rate=0.2, latency_s=0.5)
        chaos.call(charge, order)
        chaos.update(error_rate=0.5)   # a harsher game day, at run time
        chaos.enabled = False          # and over

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = ("_draw", "_error", "_outcome", "name", "settings")

    def __init__(
        self,
        name: str = "default",
        *,
        latency_rate: float = 0.0,
        latency_s: float | timedelta = 0.0,
        error_rate: float = 0.0,
        error: type[BaseException] | BaseException | Callable[[], BaseException] | None = None,
        outcome_rate: float = 0.0,
        outcome: Callable[[], Any] | None = None,
        enabled: bool = True,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self._error, self.settings = _configured(
            name,
            latency_rate=latency_rate,
            latency_s=latency_s,
            error_rate=error_rate,
            error=error,
            outcome_rate=outcome_rate,
            outcome=outcome,
            enabled=enabled,
        )
        self._outcome = outcome
        self._draw = random or _random.random
        if listeners := _events.active_listeners():
            _events.emit(FaultInjectorCreated(name), listeners)

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Validate the constructor's keyword *options* (all but the name) without building an injector.

        Side-effect free: nothing is announced (no metric series appear).

        Raises:
            TypeError: An option the constructor does not take.
            ConfigurationError: An invalid value.

        .. versionadded:: 0.1.0
        """
        _validation.constructor_options(cls, "check", _configured, options)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"FaultInjector({self.name!r}, enabled={s.enabled}, latency_rate={s.latency_rate}, "
            f"latency_s={s.latency_s:g}, error_rate={s.error_rate}, outcome_rate={s.outcome_rate})"
        )

    @property
    def enabled(self) -> bool:
        """Whether faults are injected; set it to switch them on or off at run time.

        .. versionadded:: 0.1.0
        """
        return self.settings.enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        self.settings = replace(self.settings, enabled=bool(on))

    def update(self, **changes: Any) -> None:
        """Change rates or latency at run time (``update(error_rate=0.5, latency_s=2)``); validated first.

        Raises:
            ConfigurationError: An invalid value; nothing changes.

        .. versionadded:: 0.1.0
        """
        try:
            updated = replace(self.settings, **changes)
        except TypeError:
            msg = f"update takes enabled, latency_rate, latency_s, error_rate, outcome_rate; got {sorted(changes)}"
            raise ConfigurationError(msg) from None
        self.settings = _checked_settings(updated, has_outcome=self._outcome is not None)

    def _plan(self) -> FaultPlan | None:
        """Decide this call's faults and announce them; raises the injected error after any latency."""
        faults = plan(self.settings, self._draw)
        if faults is not None and (listeners := _events.active_listeners()):
            if faults.latency_s:
                _events.emit(FaultInjected(self.name, "latency", faults.latency_s), listeners)
            if faults.error or faults.outcome:
                _events.emit(FaultInjected(self.name, "error" if faults.error else "outcome"), listeners)
        return faults

    def inject(self) -> tuple[bool, Any]:
        """Act out this call's faults: sleep, raise; ``(True, value)`` when the call must return *value* instead.

        For composite guards that run the call themselves.

        .. versionadded:: 0.1.0
        """
        faults = self._plan()
        if faults is None:
            return False, None
        if faults.latency_s:
            _timing.sleep(faults.latency_s)
        return self._act(faults)

    async def ainject(self) -> tuple[bool, Any]:
        """:meth:`inject` for async code (the latency is awaited).

        .. versionadded:: 0.1.0
        """
        faults = self._plan()
        if faults is None:
            return False, None
        if faults.latency_s:
            await _timing.asleep(faults.latency_s)
        return self._act(faults)

    def _act(self, faults: FaultPlan) -> tuple[bool, Any]:
        if faults.error:
            raise self._error()
        if faults.outcome:
            assert self._outcome is not None  # noqa: S101 - checked with the settings
            return True, self._outcome()
        return False, None
