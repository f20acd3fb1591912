"""Operation tracking: time each operation, count outcomes, keep per-platform statistics.

:class:`OperationTracker` (``start_operation(...).complete(success, error)``) is usable
as a manual handle, a context manager or a decorator (sync and async). Each operation is a span; completion is an
:class:`OperationCompleted` event that the telemetry listener turns into
``commtel_operation_duration_seconds`` with the trace as exemplar. Everything that
times an operation (this tracker, :class:`~commtel.Guard`) emits that one event;
:func:`completion_template` is its fast form for a fixed operation and platform.
"""

from __future__ import annotations

import inspect
import threading

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import wrapt

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from typing_extensions import Self

from .. import _events
from .._events import Event
from .._redaction import redact_text
from .._timing import monotonic
from ._tracing import _context_attributes, get_tracer, record_exception


__all__ = ["Operation", "OperationCompleted", "OperationStats", "OperationTracker", "completion_template"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class OperationCompleted(Event):
    """An operation finished (successfully or not)."""

    operation: str
    platform: str
    duration_s: float
    success: bool
    error_type: str | None
    span: Span


def completion_template(operation: str, platform: str) -> _events.Template:
    """:class:`OperationCompleted` of one operation and platform, emitted as
    ``template.bound()(duration_s, success, error_type, span)`` (see :class:`commtel._events.Template`)."""
    return _events.Template(
        OperationCompleted(operation, platform, 0.0, True, None, trace.INVALID_SPAN),  # noqa: FBT003 - a field
        "duration_s",
        "success",
        "error_type",
        "span",
    )


@dataclass(slots=True)
class OperationStats:
    """Running totals for one (operation, platform) pair."""

    total: int = 0
    successful: int = 0
    failed: int = 0
    total_duration_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Totals, success_rate in percent, avg_duration in seconds, errors by type."""
        return {
            "total": self.total,
            "successful": self.successful,
            "failed": self.failed,
            "success_rate": 100.0 * self.successful / self.total if self.total else 0.0,
            "avg_duration": self.total_duration_s / self.total if self.total else 0.0,
            "errors_by_type": dict(self.errors),
        }

    def add(self, other: OperationStats) -> None:
        """Fold *other* into these totals."""
        self.total += other.total
        self.successful += other.successful
        self.failed += other.failed
        self.total_duration_s += other.total_duration_s
        self.errors.update(other.errors)


def _error_type(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return type(error).__name__
    return redact_text(error.split(":", 1)[0].strip())[:64] or "error"


class Operation:
    """One running operation; finish it with :meth:`complete` or by leaving the ``with`` block.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_done", "_started", "_token", "_tracker", "operation", "platform", "span")

    def __init__(self, tracker: OperationTracker, operation: str, platform: str, span: Span) -> None:
        self._tracker = tracker
        self.operation = operation
        self.platform = platform
        self.span = span
        self._started = monotonic()
        self._done = False
        self._token: object | None = None

    def complete(self, success: bool = True, error: BaseException | str | None = None) -> float:  # noqa: FBT001, FBT002 - complete(True) reads naturally
        """Record the outcome once and end the span; returns the duration in seconds."""
        duration = monotonic() - self._started
        if self._done:
            return duration
        self._done = True
        error_type = _error_type(error) if not success else None
        if not success:
            if isinstance(error, BaseException):
                record_exception(self.span, error)
            self.span.set_status(Status(StatusCode.ERROR, redact_text(str(error)) if error else None))
            self.span.set_attribute("error.type", error_type or "error")
        self._tracker._record(self.operation, self.platform, duration, error_type, success=success)
        if listeners := _events.active_listeners():
            with trace.use_span(self.span, end_on_exit=False):
                _events.emit(
                    OperationCompleted(self.operation, self.platform, duration, success, error_type, self.span),
                    listeners,
                )
        self.span.end()
        return duration

    def __enter__(self) -> Self:
        from opentelemetry import context

        self._token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        from opentelemetry import context

        try:
            self.complete(exc is None, exc)
        finally:
            if self._token is not None:
                context.detach(self._token)  # type: ignore[arg-type]

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class OperationTracker:
    """Times operations and keeps success/failure statistics per operation and platform.

    Example::

        tracker = OperationTracker()
        op = tracker.start_operation("send_tweet", "twitter")
        op.complete(success=True)
        tracker.get_stats(platform="twitter")["success_rate"]  # 100.0

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], OperationStats] = {}

    def __repr__(self) -> str:
        return f"OperationTracker(operations={len(self._stats)})"

    def start_operation(self, operation: str, platform: str = "unknown", **attributes: Any) -> Operation:
        """Start timing *operation* on *platform*; the span starts now."""
        attrs = _context_attributes()
        attrs.update({"commtel.operation": operation, "commtel.platform": platform})
        attrs.update({f"commtel.{k}": v for k, v in attributes.items()})
        span = get_tracer().start_span(operation, attributes=attrs)
        return Operation(self, operation, platform, span)

    def track(self, operation: str | None = None, platform: str = "unknown") -> Callable[[_F], _F]:
        """Decorator: track every call of a sync or async function as an operation."""

        def decorate(fn: _F) -> _F:
            name = operation or fn.__qualname__
            if inspect.iscoroutinefunction(fn):

                @wrapt.decorator
                async def async_wrapper(wrapped: Callable[..., Any], _instance: Any, args: Any, kwargs: Any) -> Any:
                    async with self.start_operation(name, platform):
                        return await wrapped(*args, **kwargs)

                return async_wrapper(fn)  # type: ignore[return-value]

            @wrapt.decorator
            def wrapper(wrapped: Callable[..., Any], _instance: Any, args: Any, kwargs: Any) -> Any:
                with self.start_operation(name, platform):
                    return wrapped(*args, **kwargs)

            return wrapper(fn)  # type: ignore[return-value]

        return decorate

    def _record(self, operation: str, platform: str, duration: float, error_type: str | None, *, success: bool) -> None:
        with self._lock:
            stats = self._stats.get((operation, platform))
            if stats is None:
                stats = self._stats[operation, platform] = OperationStats()
            stats.total += 1
            stats.total_duration_s += duration
            if success:
                stats.successful += 1
            else:
                stats.failed += 1
                stats.errors[error_type or "error"] += 1

    def get_stats(self, platform: str | None = None) -> dict[str, Any]:
        """Totals, success_rate (percent) and avg_duration (s), for one platform or all."""
        total = OperationStats()
        with self._lock:
            for (_, plat), stats in self._stats.items():
                if platform is None or plat == platform:
                    total.add(stats)
        return total.as_dict()

    def get_operation_breakdown(self) -> dict[str, dict[str, Any]]:
        """Statistics per operation name, summed over platforms."""
        merged: dict[str, OperationStats] = {}
        with self._lock:
            for (op, _), stats in self._stats.items():
                merged.setdefault(op, OperationStats()).add(stats)
        return {op: stats.as_dict() for op, stats in sorted(merged.items())}

    def reset(self) -> None:
        """Forget all statistics."""
        with self._lock:
            self._stats.clear()
