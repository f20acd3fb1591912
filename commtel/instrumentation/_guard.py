"""The composite guard: retry( breaker( limiter( concurrency( call )))) around one operation, in one span.

Every attempt passes the inner guards again: the breaker admits it (or rejects it
with :class:`~commtel.CircuitOpenError`, which the retry layer judges like any other
error), the limiter admits it or names a wait, a bulkhead or adaptive limiter gives it
a slot (or refuses it: back-pressure, which the breaker does not count), then the call
runs and its outcome goes back to the breaker. That attempt (:func:`_attempt_sync`, :func:`_attempt_async`)
is handed to the retry loops ``@retry`` runs too, which classify, back off, retry and
emit the retry events. A call is one INTERNAL span named after the operation, current
while the policies decide, so their events (retries, throttling, breaker rejections)
land on it; it ends with the :class:`~commtel.events.OperationCompleted` every timed
operation emits, which the telemetry listener turns into
``commtel_operation_duration_seconds`` (the trace as exemplar).
"""

from __future__ import annotations

import asyncio
import functools

from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import _timing
from .. import _validation as check
from .._wrapping import WrapsCalls
from ..concurrency._errors import ConcurrencyLimitExceeded
from ..retries._config import RetryConfig
from ..retries._core import RetryCore
from ..retries._drivers import call_async, call_sync
from ..telemetry._operations import completion_template
from ..telemetry._tracing import _context_attributes, get_tracer, record_exception


if TYPE_CHECKING:
    from ..breaker._breaker import CircuitBreaker
    from ..concurrency._adaptive import AdaptiveLimiter
    from ..concurrency._bulkhead import Bulkhead
    from ..ratelimit._limiter import RateLimiter


__all__ = ["Guard"]


def _checked_breaker(value: object) -> CircuitBreaker | None:
    if value is None:
        return None
    from ..breaker._breaker import CircuitBreaker  # loaded with the first breaker, not with Guard

    return check.instance(value, "breaker", CircuitBreaker, owner="Guard")  # type: ignore[no-any-return]


def _checked_limiter(value: object) -> RateLimiter | None:
    if value is None:
        return None
    from ..ratelimit._limiter import RateLimiter  # loaded with the first limiter, not with Guard

    return check.instance(value, "limiter", RateLimiter, owner="Guard")  # type: ignore[no-any-return]


def _checked_concurrency(value: object) -> Bulkhead | AdaptiveLimiter | None:
    if value is None:
        return None
    from ..concurrency import AdaptiveLimiter, Bulkhead

    return check.instance(value, "concurrency", (Bulkhead, AdaptiveLimiter), owner="Guard")  # type: ignore[no-any-return]


_T = TypeVar("_T")


_installed = False


def _tracing_installed() -> bool:
    # Without an SDK provider a span is a no-op that still costs ~4 µs: skip it entirely.
    # OpenTelemetry sets the global provider once, so once seen it stays (saves ~0.2 µs a call).
    global _installed  # noqa: PLW0603
    if not _installed:
        _installed = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _installed


def _guarded_sync(guard: Guard, fn: Callable[..., _T], _instance: object, args: Any, kwargs: Any) -> _T:
    if guard.span and _tracing_installed():
        span, token = guard._start_span()
        try:
            return guard._call(span, fn, args, kwargs)
        finally:
            _end_span(span, token)
    return guard._call(trace.INVALID_SPAN, fn, args, kwargs)


async def _guarded_async(
    guard: Guard, fn: Callable[..., Awaitable[_T]], _instance: object, args: Any, kwargs: Any
) -> _T:
    if guard.span and _tracing_installed():
        span, token = guard._start_span()
        try:
            return await guard._acall(span, fn, args, kwargs)
        finally:
            _end_span(span, token)
    return await guard._acall(trace.INVALID_SPAN, fn, args, kwargs)


class Guard(WrapsCalls):
    """retry( circuit breaker( rate limiter( concurrency limit( call )))) for one operation, in one INTERNAL span.

    Each attempt passes the breaker, the limiter and the concurrency limit again. A
    breaker rejection (:class:`~commtel.CircuitOpenError`) is an error like any other to
    the retry layer, which does not retry it unless told to. Results whose duck-typed
    HTTP status is 5xx count as breaker failures; so do exceptions, except refusals of
    the rate limiter and of the concurrency limit (back-pressure, not a failure).

    Args:
        operation: The ``operation`` label and span name.
        platform: The ``platform`` label (and span attribute ``commtel.platform``).
        retry: A :class:`~commtel.RetryConfig` (bound here to *operation*), a ready
            :class:`~commtel.RetryPolicy`, or ``None`` for no retries.
        breaker: A :class:`~commtel.CircuitBreaker` shared by the calls it protects, or ``None``.
        limiter: A :class:`~commtel.RateLimiter` shared by the calls it admits (waiting as
            long as it says), or ``None``.
        limiter_key: The limiter key these calls spend (share it with your own
            ``acquire`` calls to share one budget); default ``"default"``.
        concurrency: A :class:`~commtel.concurrency.Bulkhead` or
            :class:`~commtel.concurrency.AdaptiveLimiter` every attempt takes a slot of
            (an adaptive limiter measures the attempt, timeout included), or ``None``.
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

    A call returns what *fn* returned on the accepted attempt. It raises
    :class:`~commtel.CircuitOpenError` when the breaker rejected it (and the retry policy did
    not retry that), :class:`~commtel.RateLimitExceeded` when the limiter refused to wait that
    long, :class:`~commtel.errors.ConcurrencyLimitExceeded` when the concurrency limit was full
    (and stayed full for its wait), :class:`~commtel.RetryExhausted` when retries ran out on a
    rejected result (``exhausted_result="raise"``), else the last original exception when
    retries ran out or it was not retryable.

    .. versionadded:: 0.1.0
    """

    _drivers = (_guarded_sync, _guarded_async)

    __slots__ = (
        "_around",
        "_around_async",
        "_attributes",
        "_completed",
        "_limiter_platform",
        "breaker",
        "concurrency",
        "exhausted_result",
        "limiter",
        "limiter_key",
        "operation",
        "platform",
        "retry",
        "span",
        "timeout_s",
    )

    def __init__(
        self,
        operation: str,
        *,
        platform: str | None = None,
        retry: RetryConfig | RetryCore | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        limiter_key: str = "default",
        concurrency: Bulkhead | AdaptiveLimiter | None = None,
        timeout_s: float | None = None,
        span: bool = True,
        exhausted_result: Literal["raise", "return"] = "raise",
    ) -> None:
        check.one_of(exhausted_result, "exhausted_result", ("raise", "return"), owner="Guard")
        self.operation = check.text(operation, "operation", owner="Guard", empty=False)
        self.platform = check.text(platform, "platform", owner="Guard", optional=True) or ""
        check.instance(retry, "retry", (RetryConfig, RetryCore), owner="Guard", optional=True)
        if isinstance(retry, RetryConfig):
            retry = RetryCore(retry, operation=operation, platform=self.platform)
        self.retry: RetryCore | None = retry
        self.breaker = _checked_breaker(breaker)
        self.limiter = _checked_limiter(limiter)
        self.limiter_key = check.text(limiter_key, "limiter_key", owner="Guard")
        self.concurrency = _checked_concurrency(concurrency)
        self.timeout_s = check.duration(timeout_s, "timeout_s", owner="Guard", optional=True)
        self.span = span
        self.exhausted_result = exhausted_result
        self._attributes = {"commtel.operation": operation, "commtel.platform": self.platform}
        self._completed = completion_template(operation, self.platform)
        # One attempt each, as the retry loops call it: around(fn, args, kwargs).
        self._around = functools.partial(_attempt_sync, self)
        self._around_async = functools.partial(_attempt_async, self)
        # None when the limiter labels its decisions with our platform already (its fast path).
        self._limiter_platform = None if limiter is None or limiter.platform == self.platform else self.platform or None

    def __repr__(self) -> str:
        parts = [f"{self.operation!r}", f"platform={self.platform!r}"]
        if self.retry is not None:
            parts.append(f"retry={self.retry.config.max_attempts} attempts")
        if self.breaker is not None:
            parts.append(f"breaker={self.breaker!r}")
        if self.limiter is not None:
            parts.append(f"limiter={self.limiter!r}")
        if self.concurrency is not None:
            parts.append(f"concurrency={self.concurrency!r}")
        if self.timeout_s is not None:
            parts.append(f"timeout_s={self.timeout_s:g}")
        return f"Guard({', '.join(parts)})"

    def _start_span(self) -> tuple[Span, Token[otel_context.Context]]:
        """Start the call's span and make it current; :func:`_end_span` undoes both.

        Not ``start_as_current_span``: its two generator context managers cost ~3 µs a
        call, and :meth:`_finished` records the error and status itself.
        """
        span = get_tracer().start_span(
            self.operation, kind=SpanKind.INTERNAL, attributes=_context_attributes(self._attributes)
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    def _finished(self, started: float, span: Span, error: BaseException | None) -> None:
        """Record the error on the span, then emit the call's :class:`OperationCompleted`."""
        duration = _timing.monotonic() - started
        if error is None:
            if (completed := self._completed.bound()) is not None:
                completed(duration, True, None, span)  # noqa: FBT003 - the event's success field
            return
        error_type = type(error).__qualname__
        if span.is_recording():
            span.set_attribute(ERROR_TYPE, error_type)
            record_exception(span, error)
            span.set_status(Status(StatusCode.ERROR, error_type))
        if (completed := self._completed.bound()) is not None:
            completed(duration, False, error_type, span)  # noqa: FBT003 - the event's success field

    def _call(self, span: Span, fn: Callable[..., _T], args: Any, kwargs: Any) -> _T:
        started = _timing.monotonic()
        retry = self.retry
        try:
            if retry is None:
                result = _attempt_sync(self, fn, args, kwargs)
            else:
                result = call_sync(retry, fn, None, args, kwargs, self._around, self.exhausted_result == "return")
        except BaseException as exc:
            self._finished(started, span, exc)
            raise
        self._finished(started, span, None)
        return result

    async def _acall(self, span: Span, fn: Callable[..., Awaitable[_T]], args: Any, kwargs: Any) -> _T:
        started = _timing.monotonic()
        retry = self.retry
        try:
            if retry is None:
                result = await _attempt_async(self, fn, args, kwargs)
            else:
                result = await call_async(
                    retry, fn, None, args, kwargs, self._around_async, self.exhausted_result == "return"
                )
        except BaseException as exc:
            self._finished(started, span, exc)
            raise
        self._finished(started, span, None)
        return result


def _end_span(span: Span, token: Token[otel_context.Context]) -> None:
    """Restore the caller's context, then end *span* (what ``use_span`` does on exit)."""
    otel_context.detach(token)
    span.end()


def _attempt_sync(guard: Guard, fn: Callable[..., _T], args: Any, kwargs: Any) -> _T:
    """One attempt: breaker( limiter( concurrency( call ))); a refusal releases the breaker's admission."""
    breaker = guard.breaker
    admission = None if breaker is None else breaker.admit()
    if guard.limiter is not None:
        try:
            guard.limiter.acquire(guard.limiter_key, platform=guard._limiter_platform)
        except BaseException:
            if breaker is not None and admission is not None:
                breaker.release(admission)
            raise
    concurrency = guard.concurrency
    try:
        result = fn(*args, **kwargs) if concurrency is None else concurrency.call(fn, *args, **kwargs)
    except ConcurrencyLimitExceeded:
        if breaker is not None and admission is not None:
            breaker.release(admission)
        raise
    except BaseException as exc:
        if breaker is not None and admission is not None:
            breaker.record(admission, exc)
        raise
    if breaker is not None and admission is not None:
        breaker.record(admission, None, result)
    return result


async def _attempt_async(guard: Guard, fn: Callable[..., Awaitable[_T]], args: Any, kwargs: Any) -> _T:
    """One attempt: breaker( limiter( concurrency( call ))), with the per-attempt timeout."""
    breaker = guard.breaker
    admission = None if breaker is None else await breaker.aadmit()
    if guard.limiter is not None:
        try:
            await guard.limiter.aacquire(guard.limiter_key, platform=guard._limiter_platform)
        except BaseException:
            if breaker is not None and admission is not None:
                await breaker.arelease(admission)
            raise
    concurrency = guard.concurrency
    try:
        if concurrency is None:  # inline, not _timed: one coroutine less on the common path
            timeout = guard.timeout_s
            result = await (fn(*args, **kwargs) if timeout is None else asyncio.wait_for(fn(*args, **kwargs), timeout))
        else:
            result = await concurrency.acall(_timed, fn, args, kwargs, guard.timeout_s)
    except ConcurrencyLimitExceeded:
        if breaker is not None and admission is not None:
            await breaker.arelease(admission)
        raise
    except BaseException as exc:
        if breaker is not None and admission is not None:
            await breaker.arecord(admission, exc)
        raise
    if breaker is not None and admission is not None:
        await breaker.arecord(admission, None, result)
    return result


async def _timed(fn: Callable[..., Awaitable[_T]], args: Any, kwargs: Any, timeout: float | None) -> _T:
    """``fn(*args, **kwargs)``, cut off after *timeout* seconds (``None``: no timeout)."""
    return await (fn(*args, **kwargs) if timeout is None else asyncio.wait_for(fn(*args, **kwargs), timeout))
