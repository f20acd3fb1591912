"""Progress of long-running tasks (durable, per user) and error accounting for batches."""

from __future__ import annotations

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
