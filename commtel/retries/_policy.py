"""Public retry API: :class:`RetryPolicy`, the ``retry`` decorator and the ``retrying`` block.

``retry`` decorates sync and async functions and methods alike (wrapt; the driver is
chosen once, at decoration); ``retrying`` retries a block of code::

    for attempt in retrying(operation="sync", max_attempts=5):
        with attempt:
            sync_once()
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, overload

from typing_extensions import Unpack

from .. import _validation as check
from .._wrapping import WrapsCalls
from ._budget import RetryBudget
from ._config import Jitter, RetryConfig
from ._core import RetryCore
from ._drivers import RetryingBlock, call_async, call_sync


__all__ = ["RetryOptions", "RetryPolicy", "retry", "retrying"]

_F = TypeVar("_F", bound=Callable[..., Any])


class RetryOptions(TypedDict, total=False):
    """Keyword options accepted wherever a :class:`RetryConfig` is (each overrides it).

    .. versionadded:: 0.1.0
    """

    max_attempts: int
    base_delay: float | timedelta
    max_delay: float | timedelta
    backoff_factor: float
    jitter: Jitter | bool
    jitter_factor: float
    on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
    retry_status_codes: list[int] | tuple[int, ...] | frozenset[int]
    retry_on_result: Callable[[Any], bool]
    retry_on_timeout: bool
    retry_on_connection_error: bool
    retry_on_server_error: bool
    retry_on_rate_limit: bool
    retry_on_specific_errors: list[str] | tuple[str, ...]
    deadline: float | timedelta
    respect_retry_after: bool
    max_retry_after: float | timedelta


class RetryPolicy(RetryCore, WrapsCalls):
    """A retry configuration bound to an operation name: call through it, or decorate with it.

    A call returns what *fn* returned on the first accepted attempt. When retries run out,
    or an error is not retryable, the last original exception is raised; when they ran out
    on a rejected result, :class:`~commtel.RetryExhausted`; when the budget denied a retry,
    :class:`~commtel.errors.RetryBudgetExhausted`.

    Args:
        config: The :class:`RetryConfig` (default: ``RetryConfig()``), overridden by *options*.
        operation: The ``operation`` label of metrics and events.
        platform: The ``platform`` label ("" when not platform-specific).
        budget: A shared :class:`RetryBudget` every retry must draw from.
        **options: Any :class:`RetryConfig` field.

    Example::

        policy = RetryPolicy(operation="fetch", platform="github", max_attempts=4)
        body = policy.call(fetch, url)          # sync
        body = await policy.acall(afetch, url)  # async

    .. versionadded:: 0.1.0
    """

    _drivers = (call_sync, call_async)

    __slots__ = ()

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        operation: str = "retry",
        platform: str = "",
        budget: RetryBudget | None = None,
        **options: Unpack[RetryOptions],
    ) -> None:
        merged = _checked_config(config, budget, options, owner="RetryPolicy")
        super().__init__(merged, operation=operation, platform=platform, budget=budget)

    def attempts(self) -> RetryingBlock:
        """Retry a block: ``for attempt in policy.attempts(): with attempt: ...`` (or ``async for``).

        .. versionadded:: 0.1.0
        """
        return RetryingBlock(self)


@overload
def retry(fn: _F, /) -> _F: ...


@overload
def retry(
    *,
    config: RetryConfig | None = None,
    operation: str | None = None,
    platform: str = "",
    budget: RetryBudget | None = None,
    **options: Unpack[RetryOptions],
) -> Callable[[_F], _F]: ...


def retry(
    fn: _F | None = None,
    /,
    *,
    config: RetryConfig | None = None,
    operation: str | None = None,
    platform: str = "",
    budget: RetryBudget | None = None,
    **options: Unpack[RetryOptions],
) -> _F | Callable[[_F], _F]:
    """Retry a sync or async function or method with exponential backoff and jitter.

    Usable bare (``@retry``) or configured (``@retry(max_attempts=5, on=httpx.HTTPError)``).
    Without *on*, timeouts, connection errors, HTTP 5xx and 429 are retried (see
    :class:`RetryConfig` for every option).

    Args:
        fn: The function, when used bare.
        config: Base configuration, overridden by *options*.
        operation: ``operation`` label; default the function's qualified name.
        platform: ``platform`` label.
        budget: A :class:`RetryBudget` every retry must draw from.
        **options: Any :class:`RetryConfig` field.

    Returns:
        The decorated function (same signature; a coroutine function stays one).

    .. versionadded:: 0.1.0
    """

    # Checked now, so a bad option fails at @retry(...) rather than when a function is decorated.
    merged = _checked_config(config, budget, options, owner="retry")

    def decorate(func: _F) -> _F:
        name = operation or getattr(func, "__qualname__", None) or "retry"
        return RetryPolicy(merged, operation=name, platform=platform, budget=budget)(func)

    return decorate if fn is None else decorate(fn)


def _checked_config(
    config: object, budget: object, options: RetryOptions | dict[str, Any], *, owner: str
) -> RetryConfig:
    """*config* merged with *options*, after checking *config* and *budget* are what they must be."""
    check.instance(budget, "budget", RetryBudget, owner=owner, optional=True)
    base = check.instance(config, "config", RetryConfig, owner=owner, optional=True) or RetryConfig()
    return base.merge(**options)


def retrying(
    config: RetryConfig | None = None,
    *,
    operation: str = "retry",
    platform: str = "",
    budget: RetryBudget | None = None,
    **options: Unpack[RetryOptions],
) -> RetryingBlock:
    """Retry a block of code that is not a function::

        for attempt in retrying(operation="sync", max_attempts=5):
            with attempt:
                ...

    ``async for attempt in retrying(...)`` awaits the waits instead. When retries run
    out the last original exception propagates out of the ``with``.

    .. versionadded:: 0.1.0
    """
    return RetryPolicy(config, operation=operation, platform=platform, budget=budget, **options).attempts()
