"""The older progress tracker: ``ProgressTracker(db_manager)`` over :class:`commtel.ProgressTracker`.

Differences from commtel's tracker, as the older API had them: another user's task is a
``ValueError`` when creating a session and ``None`` when reading progress; an invalid
update returns ``False``; percentages are whole numbers.
"""

from __future__ import annotations

import logging

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._exceptions import AuthorizationError
from ..progress import ProgressStatus as _ProgressStatus
from ..progress import ProgressTracker as _ProgressTracker


__all__ = ["ProgressStatus", "ProgressTracker"]

_log = logging.getLogger("commtel.progress")


@dataclass
class ProgressStatus:
    """A snapshot of one task's progress.

    .. versionadded:: 0.1.0
    """

    task_id: str
    user_id: int
    current_step: str
    progress_percent: int
    details: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ISO 8601 times.

        .. versionadded:: 0.1.0
        """
        return {
            "task_id": self.task_id,
            "user_id": self.user_id,
            "current_step": self.current_step,
            "progress_percent": self.progress_percent,
            "details": dict(self.details),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }

    @classmethod
    def _of(cls, status: _ProgressStatus) -> ProgressStatus:
        return cls(
            status.task_id,
            status.user_id,  # type: ignore[arg-type]
            status.current_step,
            int(status.progress_percent),
            dict(status.details),
            status.started_at,
            status.updated_at,
        )


def _engine_of(db_manager: Any) -> Any:
    """The SQLAlchemy engine behind *db_manager* (``.engine``, or the bind of ``get_session()``)."""
    engine = getattr(db_manager, "engine", None)
    if engine is not None:
        return engine
    get_session = getattr(db_manager, "get_session", None)
    if get_session is None:
        return db_manager  # a URL, path, engine or store: commtel's tracker takes those as they are
    with get_session() as session:
        return session.get_bind()


class ProgressTracker:
    """Track task progress per user, stored in the application's database.

    Args:
        db_manager: The application's database manager (its ``engine``, or the bind of a
            ``get_session()`` session, holds the progress table), or anything
            :class:`commtel.ProgressTracker` takes (a URL, an engine, a store).

    Attributes:
        tracker: The :class:`commtel.ProgressTracker` doing the work (``finish_task`` and more).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("tracker",)

    def __init__(self, db_manager: Any) -> None:
        self.tracker = _ProgressTracker(_engine_of(db_manager))

    def create_progress_session(self, task_id: str, user_id: int) -> str:
        """Start (or resume) tracking *task_id* for *user_id*; returns the session id (the task id).

        Raises:
            ValueError: The task belongs to another user.

        .. versionadded:: 0.1.0
        """
        try:
            return self.tracker.create_progress_session(task_id, user_id)
        except AuthorizationError as exc:
            raise ValueError(str(exc)) from exc

    def update_progress(
        self, task_id: str, current_step: str, progress_percent: int, details: dict[str, Any] | None = None
    ) -> bool:
        """Record progress; ``True`` if recorded, ``False`` for an unknown or finished task or a percent outside 0-100.

        .. versionadded:: 0.1.0
        """
        try:
            return self.tracker.update_progress(task_id, current_step, progress_percent, details)
        except ValueError as exc:
            _log.warning("progress update of task %r refused: %s", task_id, exc)
            return False

    def get_progress(self, task_id: str, user_id: int) -> ProgressStatus | None:
        """The task's progress, or ``None`` when there is no such task or it is another user's.

        .. versionadded:: 0.1.0
        """
        try:
            status = self.tracker.get_progress(task_id, user_id)
        except AuthorizationError:
            return None
        return None if status is None else ProgressStatus._of(status)

    def register_callback(self, task_id: str, callback: Callable[[ProgressStatus], None]) -> None:
        """Call *callback* with every update of *task_id*, in order.

        .. versionadded:: 0.1.0
        """
        self.tracker.register_callback(task_id, lambda status: callback(ProgressStatus._of(status)))
