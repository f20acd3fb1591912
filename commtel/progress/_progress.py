"""Progress tracking of long tasks per user: persisted, authorized, observable.

A progress session belongs to one task and one user; another user reading it gets
an :class:`~commtel.AuthorizationError`. Updates (step, percent 0-100, details,
ETA) are stored in the same SQL store as the conversation tracker, so a new
process (or another host) picks a task up where it was. Callbacks, sync or
async, see every update in order. The behaviour is one sans-I/O core
(:class:`ProgressOps`, with :func:`validate_percent` and :func:`estimate_eta_s`)
run by :class:`ProgressTracker` on a sync store and by
:class:`~commtel.progress.AsyncProgressTracker` on an asyncio store.

Telemetry: :class:`TaskStarted` / :class:`ProgressUpdated` / :class:`TaskFinished`
events become ``commtel_tasks_active{kind}``, ``commtel_task_duration_seconds{kind,outcome}``
and span events; a task or user id is never a metric label.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import math
import os
import threading

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias

from .. import _events
from .. import _validation as check
from .._events import Event
from .._exceptions import AuthorizationError, BackendError, ConfigurationError, StateTransitionError
from .._optional import requires
from .._timing import wall
from ..messages._owners import StoreOwner, coerce_store
from ..messages._retention import RETENTION_BATCH, Retention, RowsPurged, batch_size, cutoff_of


if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from sqlalchemy import Engine

    from ..backends._sql_queries import Op, TrackerSQL
    from ..backends._sql_store import TrackerStore


__all__ = [
    "Callbacks",
    "ProgressCallback",
    "ProgressOps",
    "ProgressState",
    "ProgressStatus",
    "ProgressTracker",
    "ProgressUpdated",
    "TaskFinished",
    "TaskStarted",
    "estimate_eta_s",
    "progress_bar",
    "validate_eta_s",
    "validate_percent",
]

_log = logging.getLogger("commtel.progress")

UserId: TypeAlias = "int | str"
ProgressCallback: TypeAlias = "Callable[[ProgressStatus], None] | Callable[[ProgressStatus], Awaitable[None]]"


class ProgressState(str, Enum):
    """Lifecycle of a progress-tracked task.

    .. versionadded:: 0.1.0
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


def validate_percent(value: float) -> float:
    """Return *value* as a float if it is a finite number from 0 to 100.

    Raises:
        ValueError: It is not a number, not finite, or outside 0-100.

    .. versionadded:: 0.1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        msg = f"progress_percent must be a number from 0 to 100, got {value!r}"
        raise ValueError(msg)
    if not 0 <= value <= 100:
        msg = f"progress_percent must be from 0 to 100, got {value!r}"
        raise ValueError(msg)
    return float(value)


def estimate_eta_s(started_at: float, now: float, percent: float) -> float | None:
    """Seconds left at the average pace so far; ``None`` before any progress.

    .. versionadded:: 0.1.0
    """
    if percent >= 100:
        return 0.0
    if percent <= 0:
        return None
    return max(0.0, now - started_at) * (100.0 - percent) / percent


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


@dataclass(frozen=True, slots=True)
class ProgressStatus:
    """A snapshot of one task's progress.

    Args:
        task_id: Task identifier (also the session id).
        user_id: The user the task belongs to.
        current_step: What the task is doing now.
        progress_percent: 0-100.
        details: Extra JSON-able details (counts, file names …).
        started_at: When the session was created.
        updated_at: When it was last updated.
        eta_s: Estimated seconds left as of *updated_at*, if known.
        state: Running, or how it finished.
        kind: The kind of task (a low-cardinality metric label).
        finished_at: When it finished, if it has.
        error: Why it failed, if it did.

    .. versionadded:: 0.1.0
    """

    task_id: str
    user_id: int | str
    current_step: str
    progress_percent: float
    details: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    updated_at: datetime | None = None
    eta_s: float | None = None
    state: ProgressState = ProgressState.RUNNING
    kind: str = "task"
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def eta(self) -> datetime | None:
        """The estimated finish time, if known."""
        if self.eta_s is None or self.updated_at is None:
            return None
        return self.updated_at + timedelta(seconds=self.eta_s)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ISO 8601 times.

        .. versionadded:: 0.1.0
        """

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "task_id": self.task_id,
            "user_id": self.user_id,
            "kind": self.kind,
            "state": self.state.value,
            "current_step": self.current_step,
            "progress_percent": self.progress_percent,
            "details": dict(self.details),
            "started_at": iso(self.started_at),
            "updated_at": iso(self.updated_at),
            "eta_s": self.eta_s,
            "eta": iso(self.eta),
            "finished_at": iso(self.finished_at),
            "error": self.error,
        }

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> ProgressStatus:
        """From a full row in :data:`~commtel.backends._sql_queries.PROGRESS_COLUMNS` order."""
        return cls(
            row[0],
            json.loads(row[1]),
            row[4],
            float(row[5]),
            json.loads(row[6]),
            _datetime(row[9]),
            _datetime(row[10]),
            row[7],
            ProgressState(row[3]),
            row[2],
            _datetime(row[11]),
            row[8],
        )


@dataclass(frozen=True, slots=True)
class ProgressTrackerCreated(Event):
    """A progress tracker was built; telemetry exposes its task series (default *kind*) at 0 from now on.

    .. versionadded:: 0.1.0
    """

    kind: str


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    """This process started (or resumed) tracking a running task.

    .. versionadded:: 0.1.0
    """

    task_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class ProgressUpdated(Event):
    """A task reported progress.

    .. versionadded:: 0.1.0
    """

    task_id: str
    kind: str
    step: str
    percent: float
    eta_s: float | None


@dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    """A task finished; *was_active* says whether this process counted it as active.

    .. versionadded:: 0.1.0
    """

    task_id: str
    kind: str
    outcome: str
    duration_s: float
    was_active: bool


def kind_label(kind: object) -> str:
    if not isinstance(kind, str) or not kind:
        msg = f"kind must be a non-empty string (a metric label value from your configuration), got {kind!r}"
        raise ConfigurationError(msg)
    return kind


def validate_eta_s(value: float | None) -> float | None:
    """Return *value* as float seconds (``None`` kept) if it is a finite number >= 0.

    Raises:
        ValueError: It is not a number, NaN, infinite or negative.

    .. versionadded:: 0.1.0
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        msg = f"eta_s must be a finite number of seconds >= 0, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _user_key(user_id: UserId) -> str:
    # JSON keeps 7 and "7" apart, so a user never matches another user's id by accident.
    return json.dumps(user_id)


def _authorize(row: Sequence[Any], user_id: UserId) -> None:
    if row[1] != _user_key(user_id):
        msg = f"progress of task {row[0]!r} belongs to another user"
        raise AuthorizationError(msg)


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


class _Callback:
    """One registered callback; async ones delivered in order even from sync updates."""

    __slots__ = ("_home", "_last", "fn", "is_async")

    def __init__(self, fn: ProgressCallback) -> None:
        self.fn = fn
        self.is_async = _is_async_callable(fn)
        try:
            self._home: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._home = None
        self._last: asyncio.Task[None] | None = None

    def call(self, status: ProgressStatus) -> None:
        """Deliver from sync code: inline, or queued behind earlier deliveries on a loop."""
        if not self.is_async:
            try:
                self.fn(status)
            except Exception:
                _log.exception("progress callback %r failed", self.fn)
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._schedule(loop, status)
        elif self._home is not None and self._home.is_running():
            self._home.call_soon_threadsafe(self._schedule, self._home, status)
        else:
            asyncio.run(self._invoke(status))

    async def acall(self, status: ProgressStatus) -> None:
        """Deliver from async code, after any delivery still queued."""
        if self._last is not None and not self._last.done():
            await self._last
        if self.is_async:
            await self._invoke(status)
        else:
            self.call(status)

    def _schedule(self, loop: asyncio.AbstractEventLoop, status: ProgressStatus) -> None:
        previous = self._last if self._last is not None and self._last.get_loop() is loop else None
        self._last = loop.create_task(self._after(previous, status))

    async def _after(self, previous: asyncio.Task[None] | None, status: ProgressStatus) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._invoke(status)

    async def _invoke(self, status: ProgressStatus) -> None:
        try:
            await self.fn(status)  # type: ignore[misc]
        except Exception:
            _log.exception("progress callback %r failed", self.fn)

    async def aflush(self) -> None:
        """Wait for queued deliveries on the running loop."""
        last = self._last
        if last is not None and last.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([last])


class ProgressOps:
    """The progress tracker's behaviour as sans-I/O operations, shared by the sync and async trackers.

    Each method returns an :data:`~commtel.backends._sql_queries.Op` that yields
    queries and decides from their answers. It also keeps which tasks this
    process counts as active (the ``commtel_tasks_active`` gauge) and emits the
    events, so both trackers report the same telemetry.
    """

    __slots__ = ("_active", "_clock", "_lock", "_retention", "_sql", "kind")

    def __init__(self, sql: TrackerSQL, *, kind: str, clock: Callable[[], float], retention: Retention) -> None:
        self._sql = sql
        self.kind = kind
        self._clock = clock
        self._retention = retention
        self._lock = threading.Lock()
        self._active: set[str] = set()
        if listeners := _events.active_listeners():
            _events.emit(ProgressTrackerCreated(kind), listeners)

    def create_session(self, task_id: str, user_id: UserId, kind: str | None) -> Op[str]:
        now = self._clock()
        row = {
            "task_id": task_id,
            "user_key": _user_key(user_id),
            "kind": self.kind if kind is None else kind_label(kind),
            "state": ProgressState.RUNNING.value,
            "current_step": "created",
            "percent": 0.0,
            "details": "{}",
            "eta_s": None,
            "error": None,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        yield self._sql.insert_progress(row)
        stored = yield self._sql.get_progress(task_id)
        if not stored:  # pragma: no cover - deleted between the two statements
            msg = f"progress session {task_id!r} vanished"
            raise BackendError(msg)
        _authorize(stored[0], user_id)
        if stored[0][3] == ProgressState.RUNNING.value:
            self._mark_active(task_id, stored[0][2])
        yield from self._retain(now)
        return task_id

    def get(self, task_id: str, user_id: UserId) -> Op[ProgressStatus | None]:
        rows = yield self._sql.get_progress(task_id)
        if not rows:
            return None
        _authorize(rows[0], user_id)
        return ProgressStatus._from_row(rows[0])

    def list_sessions(self, user_id: UserId) -> Op[list[ProgressStatus]]:
        return [ProgressStatus._from_row(row) for row in (yield self._sql.list_progress(_user_key(user_id)))]

    def update(
        self,
        task_id: str,
        step: str,
        percent: float,
        *,
        details: Mapping[str, Any] | None,
        eta_s: float | None,
        user_id: UserId | None,
    ) -> Op[ProgressStatus | None]:
        percent = validate_percent(percent)
        eta_s = validate_eta_s(eta_s)
        row = yield from self._running_row(task_id, user_id)
        if row is None:
            return None
        now = self._clock()
        eta = estimate_eta_s(row[9], now, percent) if eta_s is None else eta_s
        text = json.dumps(dict(details or {}), default=str)
        step = str(step)
        values = {"step": step, "percent": percent, "details": text, "eta": eta, "now": now}
        if (yield self._sql.update_progress(task_id, values)) != 1:
            return None  # finished concurrently
        kind = row[2]
        self._mark_active(task_id, kind)
        if listeners := _events.active_listeners():
            _events.emit(ProgressUpdated(task_id, kind, step, percent, eta), listeners)
        return dataclasses.replace(
            ProgressStatus._from_row(row),
            current_step=step,
            progress_percent=percent,
            details=json.loads(text),
            eta_s=eta,
            updated_at=_datetime(now),
        )

    def finish(
        self, task_id: str, outcome: ProgressState | str, error: str | None, user_id: UserId | None
    ) -> Op[ProgressStatus]:
        outcome = ProgressState(outcome)
        if outcome is ProgressState.RUNNING:
            msg = "finish_task needs a final outcome: completed, failed or cancelled"
            raise StateTransitionError(msg)
        row = yield from self._running_row(task_id, user_id)
        if row is None:
            msg = f"task {task_id!r} is unknown or already finished"
            raise StateTransitionError(msg)
        now = self._clock()
        completed = outcome is ProgressState.COMPLETED
        values = {
            "outcome": outcome.value,
            "final_percent": 100.0 if completed else None,
            "eta": 0.0 if completed else None,
            "error": error,
            "now": now,
        }
        if (yield self._sql.finish_progress(task_id, values)) != 1:
            msg = f"task {task_id!r} was finished concurrently"
            raise StateTransitionError(msg)
        with self._lock:
            was_active = task_id in self._active
            self._active.discard(task_id)
        kind = row[2]
        if listeners := _events.active_listeners():
            _events.emit(TaskFinished(task_id, kind, outcome.value, max(0.0, now - row[9]), was_active), listeners)
        status = ProgressStatus._from_row(row)
        return dataclasses.replace(
            status,
            state=outcome,
            progress_percent=100.0 if completed else status.progress_percent,
            eta_s=values["eta"],
            error=error,
            updated_at=_datetime(now),
            finished_at=_datetime(now),
        )

    def purge(self, finished_before: datetime | float, batch: int) -> Op[int]:
        cutoff = cutoff_of("finished_before", finished_before)
        batch = batch_size(batch)
        total = 0
        while True:
            purged = len((yield self._sql.purge_progress(cutoff, batch)))
            total += purged
            _emit_purged(purged)
            if purged < batch:
                return total

    def _retain(self, now: float) -> Op[None]:
        cutoff = self._retention.due(now)
        if cutoff is None:
            return
        try:
            purged = len((yield self._sql.purge_progress(cutoff, RETENTION_BATCH)))
        except BackendError as exc:  # housekeeping never fails the call it rides on
            _log.warning("automatic purge of finished tasks failed: %s", exc)
            return
        self._retention.ran(now, purged)
        _emit_purged(purged)

    def _running_row(self, task_id: str, user_id: UserId | None) -> Op[Sequence[Any] | None]:
        rows = yield self._sql.get_progress(task_id)
        if rows and user_id is not None:
            _authorize(rows[0], user_id)
        if not rows or rows[0][3] != ProgressState.RUNNING.value:
            return None
        return rows[0]  # type: ignore[no-any-return]

    def _mark_active(self, task_id: str, kind: str) -> None:
        with self._lock:
            if task_id in self._active:
                return
            self._active.add(task_id)
        if listeners := _events.active_listeners():
            _events.emit(TaskStarted(task_id, kind), listeners)


def _emit_purged(rows: int) -> None:
    if rows and (listeners := _events.active_listeners()):
        _events.emit(RowsPurged("progress", rows), listeners)


class Callbacks:
    """Progress callbacks per task, for the sync and the async tracker alike."""

    __slots__ = ("_by_task", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_task: dict[str, list[_Callback]] = {}

    def register_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """Call *callback* with every update of *task_id* (sync function or coroutine function).

        Callbacks run in registration order; each sees updates in the order they
        happened. An async callback registered inside a running event loop is
        delivered on that loop even when the update comes from another thread. A
        callback that raises is logged and never breaks the update.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            self._by_task.setdefault(task_id, []).append(_Callback(callback))

    def unregister_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """Stop calling *callback* for *task_id* (no error if it was not registered).

        .. versionadded:: 0.1.0
        """
        with self._lock:
            kept = [cb for cb in self._by_task.get(task_id, []) if cb.fn is not callback]
            if kept:
                self._by_task[task_id] = kept
            else:
                self._by_task.pop(task_id, None)

    async def aflush_callbacks(self) -> None:
        """Wait until async callbacks queued by sync updates on this loop have run.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            callbacks = [cb for cbs in self._by_task.values() for cb in cbs]
        for cb in callbacks:
            await cb.aflush()

    def of(self, task_id: str) -> list[_Callback]:
        """The callbacks of *task_id*, in registration order."""
        with self._lock:
            return list(self._by_task.get(task_id, ()))

    def call(self, task_id: str, status: ProgressStatus | None) -> None:
        """Deliver *status* from sync code (nothing when ``None``)."""
        if status is not None:
            for cb in self.of(task_id):
                cb.call(status)

    async def acall(self, task_id: str, status: ProgressStatus | None) -> None:
        """Deliver *status* from async code, awaiting async callbacks in turn (nothing when ``None``)."""
        if status is not None:
            for cb in self.of(task_id):
                await cb.acall(status)


class ProgressTracker(StoreOwner):
    """Track the progress of long tasks, per user, with callbacks and persistence.

    Args:
        store: A :class:`~commtel.backends._sql_store.TrackerStore` (share the
            conversation tracker's), a database URL, a state directory, or an engine.
        kind: Default kind of task, the ``kind`` label of the task metrics.
        clock: Wall clock in epoch seconds (inject a fake one in tests).
        retention_s: Keep finished tasks this long (seconds or ``timedelta``),
            then purge them automatically: new sessions run one batch of at most
            1,000 rows a minute. ``None`` (the default) keeps them until :meth:`purge`.

    Raises:
        ConfigurationError: *kind* is not a non-empty string, or *retention_s* not
            a finite number of seconds > 0.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_ops", "_owns_store", "callbacks", "store")

    def __init__(
        self,
        store: TrackerStore | str | os.PathLike[str] | Engine,
        *,
        kind: str = "task",
        clock: Callable[[], float] = wall,
        retention_s: float | timedelta | None = None,
    ) -> None:
        check.callable_(clock, "clock", owner="ProgressTracker")
        kind = kind_label(kind)
        retention = Retention(retention_s)
        self.store, self._owns_store = coerce_store(store)
        self._ops = ProgressOps(self.store.sql, kind=kind, clock=clock, retention=retention)
        self.callbacks = Callbacks()

    @property
    def kind(self) -> str:
        """Default kind of task."""
        return self._ops.kind

    def __repr__(self) -> str:
        return f"ProgressTracker({self.store!r}, kind={self.kind!r})"

    # -- sessions --------------------------------------------------------------------------

    def create_progress_session(self, task_id: str, user_id: UserId, *, kind: str | None = None) -> str:
        """Start tracking *task_id* for *user_id*; calling it again for the same user resumes it.

        Returns:
            The session id (the task id).

        Raises:
            AuthorizationError: The task exists and belongs to another user.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.create_session(task_id, user_id, kind))

    def get_progress(self, task_id: str, user_id: UserId) -> ProgressStatus | None:
        """The task's current progress, or ``None`` if there is no such task.

        Raises:
            AuthorizationError: The task belongs to another user.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.get(task_id, user_id))

    def list_sessions(self, user_id: UserId) -> list[ProgressStatus]:
        """Every task of *user_id*, oldest first.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.list_sessions(user_id))

    # -- callbacks -------------------------------------------------------------------------

    def register_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """Call *callback* with every update of *task_id*; see :meth:`Callbacks.register_callback`.

        .. versionadded:: 0.1.0
        """
        self.callbacks.register_callback(task_id, callback)

    def unregister_callback(self, task_id: str, callback: ProgressCallback) -> None:
        """Stop calling *callback* for *task_id* (no error if it was not registered).

        .. versionadded:: 0.1.0
        """
        self.callbacks.unregister_callback(task_id, callback)

    async def aflush_callbacks(self) -> None:
        """Wait until async callbacks queued by sync updates on this loop have run.

        .. versionadded:: 0.1.0
        """
        await self.callbacks.aflush_callbacks()

    # -- updates ---------------------------------------------------------------------------

    def update_progress(
        self,
        task_id: str,
        current_step: str,
        progress_percent: float,
        details: Mapping[str, Any] | None = None,
        *,
        eta_s: float | None = None,
        user_id: UserId | None = None,
    ) -> bool:
        """Record progress of a running task and call its callbacks.

        Args:
            task_id: The task.
            current_step: What it is doing now.
            progress_percent: 0-100.
            details: Extra JSON-able details; replaces the previous details.
            eta_s: Seconds left; estimated from the pace so far when omitted.
            user_id: When given, the update is refused for another user's task.

        Returns:
            ``True`` if recorded; ``False`` if the task does not exist or has finished.

        Raises:
            ValueError: *progress_percent* is not a number from 0 to 100, or *eta_s* not one >= 0.
            AuthorizationError: *user_id* is given and the task is another user's.

        .. versionadded:: 0.1.0
        """
        op = self._ops.update(task_id, current_step, progress_percent, details=details, eta_s=eta_s, user_id=user_id)
        status = self.store.run(op)
        self.callbacks.call(task_id, status)
        return status is not None

    async def aupdate_progress(
        self,
        task_id: str,
        current_step: str,
        progress_percent: float,
        details: Mapping[str, Any] | None = None,
        *,
        eta_s: float | None = None,
        user_id: UserId | None = None,
    ) -> bool:
        """Async :meth:`update_progress`: the database call runs in a thread, callbacks are awaited in order.

        :class:`~commtel.progress.AsyncProgressTracker` does the same on an asyncio driver, without threads.

        .. versionadded:: 0.1.0
        """
        op = self._ops.update(task_id, current_step, progress_percent, details=details, eta_s=eta_s, user_id=user_id)
        status = await asyncio.to_thread(self.store.run, op)
        await self.callbacks.acall(task_id, status)
        return status is not None

    def finish_task(
        self,
        task_id: str,
        outcome: ProgressState | str = ProgressState.COMPLETED,
        *,
        error: str | None = None,
        user_id: UserId | None = None,
    ) -> ProgressStatus:
        """Finish a running task as completed, failed or cancelled; callbacks see the final status.

        Raises:
            StateTransitionError: The task is unknown, already finished, or *outcome* is running.
            AuthorizationError: *user_id* is given and the task is another user's.

        .. versionadded:: 0.1.0
        """
        status = self.store.run(self._ops.finish(task_id, outcome, error, user_id))
        self.callbacks.call(task_id, status)
        return status

    async def afinish_task(
        self,
        task_id: str,
        outcome: ProgressState | str = ProgressState.COMPLETED,
        *,
        error: str | None = None,
        user_id: UserId | None = None,
    ) -> ProgressStatus:
        """Async :meth:`finish_task` (the database call runs in a thread).

        .. versionadded:: 0.1.0
        """
        status = await asyncio.to_thread(self.store.run, self._ops.finish(task_id, outcome, error, user_id))
        await self.callbacks.acall(task_id, status)
        return status

    # -- retention -------------------------------------------------------------------------

    def purge(self, *, finished_before: datetime | float, batch: int = 1000) -> int:
        """Delete tasks that finished (completed, failed or cancelled) before *finished_before*.

        Runs in batches of *batch* rows; running tasks are never purged. Counted in
        ``commtel_tracker_rows_purged_total{table="progress"}``.

        Args:
            finished_before: A timezone-aware ``datetime`` or epoch seconds.
            batch: Rows deleted per statement.

        Returns:
            How many tasks were deleted.

        Raises:
            ConfigurationError: *finished_before* is naive or not finite, or *batch* < 1.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.purge(finished_before, batch))


@contextmanager
def progress_bar(
    tracker: ProgressTracker,
    task_id: str,
    *,
    description: str | None = None,
    console: Console | None = None,
    transient: bool = False,
) -> Iterator[Progress]:
    """Show a rich progress bar that follows *task_id*'s updates, for CLI jobs.

    The bar shows the current step, the percent and the ETA; it stops when the
    block ends. Updates made with :meth:`ProgressTracker.update_progress` inside
    the block move it.

    Args:
        tracker: The tracker the task is updated on.
        task_id: The task to follow.
        description: Text before the bar; the current step when omitted.
        console: Where to draw (a :class:`rich.console.Console`); the terminal when omitted.
        transient: Remove the bar when the block ends.

    Yields:
        The :class:`rich.progress.Progress` being drawn.

    .. versionadded:: 0.1.0
    """
    with requires("rich"):
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=console,
        transient=transient,
    )
    bar = progress.add_task(description or task_id, total=100.0, eta="?")

    def follow(status: ProgressStatus) -> None:
        eta = "?" if status.eta_s is None else f"{status.eta_s:.0f}s"
        progress.update(bar, completed=status.progress_percent, description=description or status.current_step, eta=eta)

    tracker.register_callback(task_id, follow)
    try:
        with progress:
            yield progress
    finally:
        tracker.unregister_callback(task_id, follow)
