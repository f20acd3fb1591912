"""``ErrorTracker``: keep a batch going despite failures, and account for every one of them.

The accumulator pattern: each item either succeeds or fails; failures are
kept with their item and context (up to *max_errors*), counted by type, and summarised
at the end. Each failure is also an :class:`ErrorRecorded` event, which the telemetry
layer logs and puts on the current span.
"""

from __future__ import annotations

import threading

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _events
from .. import _validation as check
from .._events import Event


__all__ = ["ErrorRecorded", "ErrorTracker", "TrackedError"]

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class ErrorRecorded(Event):
    """An item of a tracked batch failed.

    .. versionadded:: 0.1.0
    """

    operation: str
    error_type: str
    item: str


@dataclass(frozen=True, slots=True)
class TrackedError:
    """One failure of a batch: the error, the item it happened on, and caller context.

    .. versionadded:: 0.1.0
    """

    error: BaseException
    item: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def error_type(self) -> str:
        """The exception's class name."""
        return type(self.error).__name__


class ErrorTracker:
    """Run a batch to the end, recording each failure with its context.

    Args:
        operation: Name of the batch (event and log label).
        max_errors: Failures kept in :attr:`errors` (all are counted).

    Example::

        tracker = ErrorTracker("sync_users")
        for user in users:
            with tracker.track(user.id, source="ldap"):
                sync(user)
        print(tracker.summary())

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "by_type", "errors", "failed", "max_errors", "operation", "succeeded")

    def __init__(self, operation: str = "batch", *, max_errors: int = 1000) -> None:
        self.operation = check.text(operation, "operation", owner="ErrorTracker")
        self.max_errors = check.whole(max_errors, "max_errors", owner="ErrorTracker", minimum=0)
        self.succeeded = 0
        self.failed = 0
        self.errors: list[TrackedError] = []
        self.by_type: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ErrorTracker({self.operation!r}, succeeded={self.succeeded}, failed={self.failed})"

    @property
    def total(self) -> int:
        """Items seen."""
        return self.succeeded + self.failed

    @property
    def has_errors(self) -> bool:
        """Whether any item failed."""
        return self.failed > 0

    def record_success(self) -> None:
        """Count one item that succeeded.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            self.succeeded += 1

    def record_error(self, error: BaseException, item: object = None, **context: Any) -> TrackedError:
        """Record one failed *item* with its *error* and *context*; the batch goes on.

        .. versionadded:: 0.1.0
        """
        tracked = TrackedError(error, "" if item is None else str(item), context)
        with self._lock:
            self.failed += 1
            self.by_type[tracked.error_type] += 1
            if len(self.errors) < self.max_errors:
                self.errors.append(tracked)
        if listeners := _events.active_listeners():
            _events.emit(ErrorRecorded(self.operation, tracked.error_type, tracked.item), listeners)
        return tracked

    @contextmanager
    def track(self, item: object = None, **context: Any) -> Iterator[None]:
        """Run the block as one item: an ``Exception`` is recorded and swallowed.

        .. versionadded:: 0.1.0
        """
        try:
            yield
        except Exception as exc:
            self.record_error(exc, item, **context)
        else:
            self.record_success()

    def run(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
        """Call ``fn(item)`` for every item; returns the results of those that succeeded.

        .. versionadded:: 0.1.0
        """
        results: list[_R] = []
        for item in items:
            with self.track(item):
                results.append(fn(item))
        return results

    async def arun(self, fn: Callable[[_T], Awaitable[_R]], items: Iterable[_T]) -> list[_R]:
        """Await ``fn(item)`` for every item in turn (see :meth:`run`).

        .. versionadded:: 0.1.0
        """
        results: list[_R] = []
        for item in items:
            with self.track(item):
                results.append(await fn(item))
        return results

    def summary(self) -> dict[str, Any]:
        """``total``, ``successful``, ``failed``, ``success_rate`` (percent), ``errors_by_type``
        and ``errors`` (item, type and message of each kept failure).

        .. versionadded:: 0.1.0
        """
        with self._lock:
            kept = list(self.errors)
            by_type = dict(self.by_type)
        total = self.total
        return {
            "operation": self.operation,
            "total": total,
            "successful": self.succeeded,
            "failed": self.failed,
            "success_rate": 100.0 * self.succeeded / total if total else 100.0,
            "errors_by_type": by_type,
            "errors": [
                {"item": e.item, "type": e.error_type, "message": str(e.error), "context": dict(e.context)}
                for e in kept
            ],
        }
