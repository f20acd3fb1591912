"""Progress of long-running tasks (durable, per user) and error accounting for batches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._async_progress import AsyncProgressTracker
    from ._errors import ErrorRecorded, ErrorTracker, TrackedError
    from ._progress import (
        ProgressState,
        ProgressStatus,
        ProgressTracker,
        ProgressUpdated,
        TaskFinished,
        TaskStarted,
        progress_bar,
    )


__all__ = [
    "AsyncProgressTracker",
    "ErrorRecorded",
    "ErrorTracker",
    "ProgressState",
    "ProgressStatus",
    "ProgressTracker",
    "ProgressUpdated",
    "TaskFinished",
    "TaskStarted",
    "TrackedError",
    "progress_bar",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._async_progress": ("AsyncProgressTracker",),
            "._errors": ("ErrorRecorded", "ErrorTracker", "TrackedError"),
            "._progress": (
                "ProgressState",
                "ProgressStatus",
                "ProgressTracker",
                "ProgressUpdated",
                "TaskFinished",
                "TaskStarted",
                "progress_bar",
            ),
        },
    )
