"""Settings and retention shared by the trackers: durations, purge cut-offs, automatic purging.

Sans-I/O: :class:`Retention` only decides *when* a purge batch is due (handed
``now``); the trackers' operations run it and emit :class:`RowsPurged`
(``commtel_tracker_rows_purged_total{table}``).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import _validation as check
from .._events import Event
from .._exceptions import ConfigurationError


__all__ = ["RETENTION_BATCH", "Retention", "RowsPurged", "batch_size", "cutoff_of", "positive_seconds"]

#: Rows one automatic purge deletes at most; a full batch makes the next one due at once.
RETENTION_BATCH = 1000
#: Automatic purges run at most this often (or every retention period, if shorter).
RETENTION_EVERY_S = 60.0


def positive_seconds(name: str, value: float | timedelta) -> float:
    """*value* as float seconds; anything but a finite number > 0 (or such a ``timedelta``) is refused.

    Raises:
        ConfigurationError: *value* is not a number, NaN, infinite, zero or negative.
    """
    return check.duration(value, name, owner="", positive=True)


def batch_size(value: int) -> int:
    """*value* if it is a whole number >= 1.

    Raises:
        ConfigurationError: It is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"batch must be a whole number >= 1, got {value!r}"
        raise ConfigurationError(msg)
    return value


def cutoff_of(name: str, when: datetime | float) -> float:
    """Epoch seconds of *when*: a timezone-aware ``datetime`` or finite epoch seconds.

    Raises:
        ConfigurationError: A naive ``datetime`` (its zone would be a guess) or a non-finite number.
    """
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            msg = f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc) - timedelta(days=7)), got {when!r}"
            raise ConfigurationError(msg)
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        msg = f"{name} must be a timezone-aware datetime or finite epoch seconds, got {when!r}"
        raise ConfigurationError(msg)
    return float(when)


@dataclass(frozen=True, slots=True)
class RowsPurged(Event):
    """A purge deleted *rows* finished rows of *table* (``messages`` or ``progress``).

    .. versionadded:: 0.1.0
    """

    table: str
    rows: int


class Retention:
    """When automatic purges are due: at most every minute (or retention period), sooner while a backlog lasts.

    Args:
        keep_s: How long finished rows are kept; ``None`` turns automatic purging off.
    """

    __slots__ = ("_due_at", "keep_s")

    def __init__(self, keep_s: float | timedelta | None) -> None:
        self.keep_s = None if keep_s is None else positive_seconds("retention_s", keep_s)
        self._due_at = -math.inf

    def due(self, now: float) -> float | None:
        """The cut-off of a purge batch to run now, or ``None``; the caller runs it and reports :meth:`ran`."""
        if self.keep_s is None or now < self._due_at:
            return None
        self._due_at = now + min(RETENTION_EVERY_S, self.keep_s)  # taken: concurrent callers skip this slot
        return now - self.keep_s

    def ran(self, now: float, purged: int) -> None:
        """A batch purged *purged* rows: a full batch means more are waiting, so the next call purges again."""
        if purged >= RETENTION_BATCH:
            self._due_at = now
