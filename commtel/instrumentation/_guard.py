"""The composite guard: retry( breaker( limiter( call ))) around one operation, in one span.

Every attempt passes the inner guards again: the breaker admits it (or rejects it
with :class:`~commtel.CircuitOpenError`, which the retry layer judges like any other
error), the limiter admits it or names a wait, then the call runs and its outcome
goes back to the breaker and to the retry decision. :class:`_GuardCall` holds those
decisions (sans-I/O: it is handed ``now`` and returns waits); :func:`_run_sync` and
:func:`_run_async` are the two thin drivers, parallel line for line, that sleep and
call. A call is one INTERNAL span named after the operation, current while the
policies decide, so their events (retries, throttling, breaker rejections) land on
it; its duration feeds ``commtel_operation_duration_seconds``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

import wrapt

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import _events, _timing
from .._exceptions import ConfigurationError, RetryExhausted
from ..policies._retry_config import RetryConfig, seconds
from ..policies._retry_core import RetryCall, RetryCore
from ..telemetry._operations import OperationCompleted
from ..telemetry._tracing import _context_attributes, get_tracer


if TYPE_CHECKING:
    from ..policies._breaker import CircuitBreaker
    from ..policies._ratelimit import RateLimiter


__all__ = ["Guard"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


def _tracing_installed() -> bool:
    # Without an SDK provider a span is a no-op that still costs ~4 µs: skip it entirely.
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class Guard:
    """retry( circuit breaker( rate limiter( call ))) for one operation, in one INTERNAL span.

    Each attempt passes the breaker and the limiter again. A breaker rejection
    (:class:`~commtel.CircuitOpenError`) is an error like any other to the retry layer,
    which does not retry it unless told to. Results whose duck-typed HTTP status is
    5xx count as breaker failures; so do exceptions, except limiter refusals.

    Args:
        operation: The ``operation`` label and span name.
        platform: The ``platform`` label (and span attribute ``commtel.platform``).
        retry: A :class:`~commtel.RetryConfig` (bound here to *operation*), a ready
            :class:`~commtel.RetryPolicy`, or ``None`` for no retries.
        breaker: A :class:`~commtel.CircuitBreaker` shared by the calls it protects, or ``None``.
        limiter: A :class:`~commtel.RateLimiter` shared by the calls it admits (key
            ``"default"``, waiting as long as it says), or ``None``.
        timeout_s: Per-attempt timeout for async calls (``asyncio.wait_for``); sync
            calls cannot be interrupted safely, so for them it is ignored (HTTP
            instrumentors pass it to the client library instead).
        span: Make each call an INTERNAL span (only when a TracerProvider is installed).
        exhausted_result: When retries run out on a rejected *result* (say an HTTP 503):
            ``"raise"`` :class:`~commtel.RetryExhausted`, or ``"return"`` that result.

    Example::

        guard = Guard("send_mail", platform="email", retry=RetryConfig(max_attempts=3))
        guard.call(smtp.send_message, msg)
        await guard.acall(client.post, "/messages", json=body)

        @guard
        def send(msg): ...

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_attributes", "breaker", "exhausted_result", "limiter", "operation", "platform", "retry",
                 "span", "timeout_s")

    def __init__(
        self,
        operation: str,
        *,
        platform: str | None = None,
        retry: RetryConfig | RetryCore | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        timeout_s: float | None = None,
        span: bool = True,
        exhausted_result: Literal["raise", "return"] = "raise",
    ) -> None:
        if exhausted_result not in {"raise", "return"}:
            msg = f"exhausted_result must be 'raise' or 'return', got {exhausted_result!r}"
            raise ConfigurationError(msg)
        self.operation = operation
        self.platform = platform or ""
        if isinstance(retry, RetryConfig):
            retry = RetryCore(retry, operation=operation, platform=self.platform)
        self.retry: RetryCore | None = retry
        self.breaker = breaker
        self.limiter = limiter
        self.timeout_s = seconds(timeout_s, "timeout_s")
        self.span = span
        self.exhausted_result = exhausted_result
        self._attributes = {"commtel.operation": operation, "commtel.platform": self.platform}

    def __repr__(self) -> str:
        parts = [f"{self.operation!r}", f"platform={self.platform!r}"]
        if self.retry is not None:
            parts.append(f"retry={self.retry.config.max_attempts} attempts")
        if self.breaker is not None:
            parts.append(f"breaker={self.breaker!r}")
        if self.limiter is not None:
            parts.append(f"limiter={self.limiter!r}")
        if self.timeout_s is not None:
            parts.append(f"timeout_s={self.timeout_s:g}")
        return f"Guard({', '.join(parts)})"

    def _span(self) -> AbstractContextManager[Span]:
        if not self.span or not _tracing_installed():
            return nullcontext(trace.INVALID_SPAN)
        attributes = _context_attributes()
        attributes.update(self._attributes)
        return get_tracer().start_as_current_span(
            self.operation, kind=SpanKind.INTERNAL, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        )

    def call(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Call ``fn(*args, **kwargs)`` through the guard.

        Returns:
            What *fn* returned on the accepted attempt.

        Raises:
            CircuitOpenError: The breaker rejected the call (and the retry policy did not retry it).
            RateLimitExceeded: The limiter refused to wait that long.
            RetryExhausted: Retries ran out on a rejected result (``exhausted_result="raise"``).
            Exception: The last original exception when retries ran out or it was not retryable.

        .. versionadded:: 0.1.0
        """
        with self._span() as span:
            state = _GuardCall(self, span)
            try:
                result = _run_sync(state, fn, args, kwargs)
            except BaseException as exc:
                state.finish(exc)
                raise
            state.finish(None)
            return result

    async def acall(self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Await ``fn(*args, **kwargs)`` through the guard (see :meth:`call`).

        .. versionadded:: 0.1.0
        """
        with self._span() as span:
            state = _GuardCall(self, span)
            try:
                result = await _run_async(state, fn, args, kwargs)
            except BaseException as exc:
                state.finish(exc)
                raise
            state.finish(None)
            return result

    def __call__(self, fn: _F, /) -> _F:
        """Decorate a sync or async function or method (chosen once, here).

        .. versionadded:: 0.1.0
        """
        wrapper = _wrapper_async if inspect.iscoroutinefunction(fn) else _wrapper_sync
        return wrapt.FunctionWrapper(fn, functools.partial(wrapper, self))  # type: ignore[return-value]


def _wrapper_sync(guard: Guard, wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:  # noqa: ARG001 - wrapt's signature
    return guard.call(wrapped, *args, **kwargs)


async def _wrapper_async(guard: Guard, wrapped: Callable[..., Any], instance: object, args: Any, kwargs: Any) -> Any:  # noqa: ARG001 - wrapt's signature
    return await guard.acall(wrapped, *args, **kwargs)


class _NotCalled(BaseException):
    """Stands for "the limiter refused before the call ran": the breaker ignores such outcomes."""


_NOT_CALLED = _NotCalled()


class _GuardCall:
    """The retry decisions of one guarded call; never sleeps, awaits or reads the clock itself."""

    __slots__ = ("guard", "retry_call", "span", "started")

    def __init__(self, guard: Guard, span: Span) -> None:
        self.guard = guard
        self.span = span
        self.retry_call: RetryCall | None = None
        self.started = _timing.monotonic()

    def failed(self, exc: Exception, now: float) -> float | None:
        """After *exc*: seconds to wait before the next attempt, or ``None`` to re-raise."""
        retry = self.guard.retry
        if retry is None:
            return None
        if self.retry_call is None:
            self.retry_call = retry.begin(self.started)
        return self.retry_call.on_error(exc, now)

    def returned(self, result: object, now: float) -> float | None:
        """After a returned *result*: seconds to wait before retrying, or ``None`` to return it."""
        retry = self.guard.retry
        if retry is None:
            return None
        reason = retry.classifier.result(result) if retry.checks_results else None
        if reason is None:
            if self.retry_call is None:
                retry.first_try()
            else:
                self.retry_call.succeeded()
            return None
        if self.retry_call is None:
            self.retry_call = retry.begin(self.started)
        try:
            return self.retry_call.on_result(result, reason, now)
        except RetryExhausted:
            if self.guard.exhausted_result == "return":
                return None
            raise

    def finish(self, error: BaseException | None) -> None:
        """End of the call: span status and the operation-duration metric."""
        span = self.span
        error_type = None if error is None else type(error).__qualname__
        if error is not None and span.is_recording():
            span.set_attribute("error.type", error_type or "")
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, error_type))
        if listeners := _events.active_listeners():
            guard = self.guard
            duration = _timing.monotonic() - self.started
            _events.emit(
                OperationCompleted(guard.operation, guard.platform, duration, error is None, error_type, span),
                listeners,
            )


def _run_sync(state: _GuardCall, fn: Callable[..., _T], args: Any, kwargs: Any) -> _T:
    """The sync retry driver: sleep what the retry policy says between attempts."""
    while True:
        try:
            result = _attempt_sync(state.guard, fn, args, kwargs)
        except Exception as exc:
            delay = state.failed(exc, _timing.monotonic())
            if delay is None:
                raise
        else:
            delay = state.returned(result, _timing.monotonic())
            if delay is None:
                return result
        _timing.sleep(delay)


async def _run_async(state: _GuardCall, fn: Callable[..., Awaitable[_T]], args: Any, kwargs: Any) -> _T:
    """The async retry driver: await what the retry policy says between attempts."""
    while True:
        try:
            result = await _attempt_async(state.guard, fn, args, kwargs)
        except Exception as exc:
            delay = state.failed(exc, _timing.monotonic())
            if delay is None:
                raise
        else:
            delay = state.returned(result, _timing.monotonic())
            if delay is None:
                return result
        await _timing.asleep(delay)


def _attempt_sync(guard: Guard, fn: Callable[..., _T], args: Any, kwargs: Any) -> _T:
    """One attempt: breaker( limiter( call ))."""
    breaker = guard.breaker
    admission = None if breaker is None else breaker.admit()
    called = False
    try:
        if guard.limiter is not None:
            guard.limiter.acquire(platform=guard.platform or None)
        called = True
        result = fn(*args, **kwargs)
    except BaseException as exc:
        if breaker is not None and admission is not None:
            breaker.record(admission, exc if called else _NOT_CALLED)
        raise
    if breaker is not None and admission is not None:
        breaker.record(admission, None, result)
    return result


async def _attempt_async(guard: Guard, fn: Callable[..., Awaitable[_T]], args: Any, kwargs: Any) -> _T:
    """One attempt: breaker( limiter( call )), with the per-attempt timeout."""
    breaker = guard.breaker
    admission = None if breaker is None else await breaker.aadmit()
    called = False
    try:
        if guard.limiter is not None:
            await guard.limiter.aacquire(platform=guard.platform or None)
        called = True
        timeout = guard.timeout_s
        result = await (fn(*args, **kwargs) if timeout is None else asyncio.wait_for(fn(*args, **kwargs), timeout))
    except BaseException as exc:
        if breaker is not None and admission is not None:
            await breaker.arecord(admission, exc if called else _NOT_CALLED)
        raise
    if breaker is not None and admission is not None:
        await breaker.arecord(admission, None, result)
    return result
