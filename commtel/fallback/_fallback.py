"""Fallback: answer a failed call with a value, or with what a handler makes of the failure."""

from __future__ import annotations

import inspect

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from .. import _events
from .._exceptions import CircuitOpenError, ConfigurationError, RateLimitExceeded
from .._wrapping import WrapsCalls
from ..concurrency._errors import ConcurrencyLimitExceeded
from ..retries._classify import _is_timeout
from ._events import FallbackCreated, FallbackUsed


__all__ = ["Failure", "Fallback"]

_T = TypeVar("_T")
_UNSET: Any = object()


class Failure(NamedTuple):
    """What a fallback handler is given: the error, or the result judged a failure.

    .. versionadded:: 0.1.0
    """

    error: BaseException | None
    result: object = None


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "result"
    if isinstance(error, CircuitOpenError | RateLimitExceeded | ConcurrencyLimitExceeded):
        return "rejected"
    return "timeout" if _is_timeout(error) else "error"


def _call_sync(fallback: Fallback, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        if not fallback.handles(exc):
            raise
        answer: _T = fallback.answer(Failure(exc))
        return answer
    if fallback.on_result is not None and fallback.failed(result):
        return fallback.answer(Failure(None, result))  # type: ignore[no-any-return]
    return result


async def _call_async(
    fallback: Fallback, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    try:
        result = await fn(*args, **kwargs)
    except Exception as exc:
        if not fallback.handles(exc):
            raise
        failure = Failure(exc)
    else:
        if fallback.on_result is None or not fallback.failed(result):
            return result
        failure = Failure(None, result)
    answer = fallback.answer(failure)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer  # type: ignore[no-any-return]


class Fallback(WrapsCalls):
    """When a call fails, return *value* (or what *handler* returns) instead, and record the failure.

    The failure is counted (``commtel_fallbacks_total``), recorded on the current span
    and logged; the caller gets the fallback. Errors not matching *on*, and
    cancellations or ``KeyboardInterrupt``, are never replaced.

    Args:
        value: What a failed call returns.
        handler: Called with the :class:`Failure` instead of returning *value*; on the
            async paths it may be async. Give exactly one of *value* and *handler*.
        name: The ``fallback`` label of its metric.
        on: Exception types that are replaced (default: every ``Exception``).
        on_result: Predicate on results that count as failures (default: none).

    Example::

        prices = Fallback({}, name="prices")
        current = prices.call(fetch_prices)  # {} when fetch_prices raises

    .. versionadded:: 0.1.0
    """

    _drivers = (_call_sync, _call_async)

    __slots__ = ("handler", "name", "on", "on_result", "value")

    def __init__(
        self,
        value: Any = _UNSET,
        *,
        handler: Callable[[Failure], Any] | None = None,
        name: str = "default",
        on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        on_result: Callable[[Any], bool] | None = None,
    ) -> None:
        if (value is _UNSET) == (handler is None):
            msg = "Fallback needs exactly one of value or handler="
            raise ConfigurationError(msg)
        self.value = value
        self.handler = handler
        self.name = name
        self.on = on
        self.on_result = on_result
        if listeners := _events.active_listeners():
            _events.emit(FallbackCreated(name), listeners)

    def __repr__(self) -> str:
        answer = f"handler={self.handler!r}" if self.handler is not None else f"value={self.value!r}"
        return f"Fallback({answer}, name={self.name!r})"

    def handles(self, error: BaseException) -> bool:
        """Whether *error* is replaced by the fallback.

        .. versionadded:: 0.1.0
        """
        return isinstance(error, Exception) and isinstance(error, self.on)

    def failed(self, result: object) -> bool:
        """Whether a returned *result* counts as a failure.

        .. versionadded:: 0.1.0
        """
        return self.on_result is not None and bool(self.on_result(result))

    def answer(self, failure: Failure) -> Any:
        """Record *failure* and return the fallback (a handler's awaitable is returned as is).

        .. versionadded:: 0.1.0
        """
        if listeners := _events.active_listeners():
            _events.emit(FallbackUsed(self.name, _reason(failure.error), failure.error), listeners)
        return self.value if self.handler is None else self.handler(failure)
