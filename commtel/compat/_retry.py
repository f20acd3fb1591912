"""The older retry spellings over :mod:`commtel.retries`: ``RetryConfig`` and four decorators.

``RetryConfig`` takes the older positional order and both names of the options that had
two (``base_delay``/``initial_delay``, ``backoff_factor``/``exponential_base``,
``retry_exceptions``/``on``); it *is* a :class:`commtel.retries.RetryConfig`, so it works
everywhere commtel takes one. ``retry``, ``retry_with_backoff`` and
``retry_with_rate_limit`` are :func:`commtel.retry`; ``async_retry`` differs in one way:
when retries run out on an exception it raises :class:`~commtel.errors.RetryExhausted`
from it, as that decorator always did.
"""

from __future__ import annotations

import functools
import inspect

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import wrapt

from .. import _validation as check
from .._exceptions import RetryBudgetExhausted, RetryExhausted
from ..retries import RetryConfig as _RetryConfig
from ..retries import RetryPolicy
from ..retries import retry as _retry


__all__ = ["RetryConfig", "async_retry", "retry", "retry_with_backoff", "retry_with_rate_limit"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


class RetryConfig(_RetryConfig):
    """:class:`commtel.retries.RetryConfig` under the older constructor.

    Positional order: ``max_attempts, base_delay, max_delay, backoff_factor,
    retry_exceptions, retry_status_codes, jitter, jitter_factor, retry_on_timeout,
    retry_on_connection_error, retry_on_server_error, retry_on_rate_limit,
    retry_on_specific_errors``. ``initial_delay`` and ``exponential_base`` are accepted
    as keywords for ``base_delay`` and ``backoff_factor``; any other
    :class:`~commtel.retries.RetryConfig` field is accepted as a keyword too.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def __init__(
        self,
        max_attempts: int = 3,
        base_delay: float | timedelta = 1.0,
        max_delay: float | timedelta = 30.0,
        backoff_factor: float = 2.0,
        retry_exceptions: Iterable[type[BaseException]] | None = None,
        retry_status_codes: Iterable[int] | None = None,
        jitter: bool | str = True,
        jitter_factor: float = 0.1,
        retry_on_timeout: bool = True,
        retry_on_connection_error: bool = True,
        retry_on_server_error: bool = True,
        retry_on_rate_limit: bool = True,
        retry_on_specific_errors: Iterable[str] | None = None,
        *,
        initial_delay: float | timedelta | None = None,
        exponential_base: float | None = None,
        **options: Any,
    ) -> None:
        # The older names are checked under their own names, so an error names what was passed.
        if initial_delay is not None:
            check.duration(initial_delay, "initial_delay", owner="RetryConfig")
        if exponential_base is not None:
            check.number(exponential_base, "exponential_base", owner="RetryConfig", minimum=1.0)
        if retry_exceptions is not None:
            options["on"] = retry_exceptions
        super().__init__(
            max_attempts=max_attempts,
            base_delay=initial_delay if initial_delay is not None else base_delay,  # type: ignore[arg-type]
            max_delay=max_delay,  # type: ignore[arg-type]
            backoff_factor=exponential_base if exponential_base is not None else backoff_factor,
            retry_status_codes=() if retry_status_codes is None else retry_status_codes,  # type: ignore[arg-type]  # RetryConfig normalizes it
            jitter=jitter,  # type: ignore[arg-type]
            jitter_factor=jitter_factor,
            retry_on_timeout=retry_on_timeout,
            retry_on_connection_error=retry_on_connection_error,
            retry_on_server_error=retry_on_server_error,
            retry_on_rate_limit=retry_on_rate_limit,
            retry_on_specific_errors=tuple(retry_on_specific_errors or ()),
            **options,
        )

    @property
    def initial_delay(self) -> float:
        """:attr:`base_delay` under its other name."""
        return self.base_delay

    @property
    def exponential_base(self) -> float:
        """:attr:`backoff_factor` under its other name."""
        return self.backoff_factor

    @property
    def retry_exceptions(self) -> list[type[BaseException]]:
        """The exception types of :attr:`on` as a list."""
        return list(self.on) if isinstance(self.on, tuple) else []


def _config(config: _RetryConfig | None, options: dict[str, Any]) -> _RetryConfig:
    """*config* (default ``RetryConfig()``) with *options* applied; ``None`` options are ignored."""
    given = {key: value for key, value in options.items() if value is not None}
    if not given:
        return config if config is not None else RetryConfig()
    base = config if config is not None else _RetryConfig()
    renamed = {"initial_delay": "base_delay", "exponential_base": "backoff_factor", "retry_exceptions": "on"}
    # RetryConfig checks and normalizes every field (exception types, status codes …).
    return base.merge(**{renamed.get(key, key): value for key, value in given.items()})


def retry(
    fn: _F | None = None,
    /,
    *,
    config: _RetryConfig | None = None,
    operation: str | None = None,
    platform: str = "",
    **options: Any,
) -> Any:
    """``@retry``, ``@retry(max_attempts=3, initial_delay=1.0)`` or ``@retry(config=config)``.

    :func:`commtel.retry` with the older option names: when retries run out, the last
    exception is re-raised unchanged.

    .. versionadded:: 0.1.0
    """
    config = _config(config, options)
    if fn is not None:
        return _retry(fn, config=config, operation=operation, platform=platform)  # type: ignore[call-overload]
    return _retry(config=config, operation=operation, platform=platform)


def retry_with_backoff(
    config: _RetryConfig | None = None, *, operation: str | None = None, platform: str = "", **options: Any
) -> Callable[[_F], _F]:
    """``@retry_with_backoff(config=RetryConfig(max_attempts=3))``: :func:`commtel.retry` (sync or async).

    .. versionadded:: 0.1.0
    """
    return _retry(config=_config(config, options), operation=operation, platform=platform)


def retry_with_rate_limit(
    config: _RetryConfig | None = None, *, operation: str | None = None, platform: str = "", **options: Any
) -> Callable[[_F], _F]:
    """``@retry_with_rate_limit(max_attempts=5)``: retry, waiting what a throttling server asked.

    A :class:`RateLimitError` (or an HTTP 429) is retried after its ``retry_after``
    (``Retry-After``), capped by ``max_retry_after``; other retryable failures back off
    as usual. :func:`commtel.retry` already does this by default.

    .. versionadded:: 0.1.0
    """
    options.setdefault("retry_on_rate_limit", True)
    options.setdefault("respect_retry_after", True)
    return _retry(config=_config(config, options), operation=operation, platform=platform)


def async_retry(
    config: _RetryConfig | None = None,
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    backoff_factor: float | None = None,
    jitter: bool | None = None,
    retry_exceptions: Iterable[type[BaseException]] | None = None,
    retry_status_codes: Iterable[int] | None = None,
    *,
    operation: str | None = None,
    platform: str = "",
    **options: Any,
) -> Callable[[_F], _F]:
    """Retry an async (or sync) function; raise :class:`~commtel.errors.RetryExhausted` when retries run out.

    Every argument but *config* overrides the same field of *config* when not ``None``.
    An exception that is not retryable propagates unchanged on its first occurrence;
    a retryable one that is still raised on the last attempt becomes the
    ``__cause__`` of :class:`~commtel.errors.RetryExhausted`.

    .. versionadded:: 0.1.0
    """
    merged = _config(
        config,
        {
            "max_attempts": max_attempts,
            "base_delay": base_delay,
            "max_delay": max_delay,
            "backoff_factor": backoff_factor,
            "jitter": jitter,
            "retry_exceptions": retry_exceptions,
            "retry_status_codes": retry_status_codes,
            **options,
        },
    )

    def decorate(fn: _F) -> _F:
        name = operation or getattr(fn, "__qualname__", None) or "retry"
        policy = RetryPolicy(merged, operation=name, platform=platform)
        driver = _exhausting_async if inspect.iscoroutinefunction(fn) else _exhausting_sync
        return wrapt.FunctionWrapper(fn, functools.partial(driver, policy))  # type: ignore[return-value]

    return decorate


def _exhausted(policy: RetryPolicy, exc: Exception, attempts: int) -> BaseException:
    """*exc* itself, or :class:`RetryExhausted` from it when it was retryable (retries ran out)."""
    if isinstance(exc, RetryExhausted | RetryBudgetExhausted) or policy.classifier.error(exc) is None:
        return exc
    error = RetryExhausted(policy.operation, attempts)
    error.__cause__ = exc
    return error


def _exhausting_sync(policy: RetryPolicy, fn: Callable[..., _T], instance: object, args: Any, kwargs: Any) -> _T:  # noqa: ARG001 - wrapt's signature
    attempts = 0

    def once() -> _T:
        nonlocal attempts
        attempts += 1
        return fn(*args, **kwargs)

    try:
        return policy.call(once)
    except Exception as exc:
        error = _exhausted(policy, exc, attempts)
        if error is exc:
            raise
        raise error from exc


async def _exhausting_async(
    policy: RetryPolicy,
    fn: Callable[..., Awaitable[_T]],
    instance: object,  # noqa: ARG001 - wrapt's signature
    args: Any,
    kwargs: Any,
) -> _T:
    attempts = 0

    async def once() -> _T:
        nonlocal attempts
        attempts += 1
        return await fn(*args, **kwargs)

    try:
        return await policy.acall(once)
    except Exception as exc:
        error = _exhausted(policy, exc, attempts)
        if error is exc:
            raise
        raise error from exc
