"""Deadlines, sans-I/O: which limit binds an attempt, and how long it may run.

A :class:`Deadline` is an absolute monotonic time with the name and scope of the timeout
that set it. Nested timeouts never extend an outer one: an attempt's deadline is the
earlier of its own and the enclosing one, and when the enclosing one binds, an expiry is
reported in its name.
"""

from __future__ import annotations

from typing import NamedTuple


__all__ = ["Deadline", "tighter"]


class Deadline(NamedTuple):
    """When a timeout expires (monotonic seconds), and which timeout it is.

    Attributes:
        at: Monotonic time of expiry.
        name: The timeout's name.
        scope: ``"attempt"`` or ``"total"``.
        length_s: The timeout's length.

    .. versionadded:: 0.1.0
    """

    at: float
    name: str
    scope: str
    length_s: float

    def remaining(self, now: float) -> float:
        """Seconds left at *now* (0 once passed)."""
        return max(0.0, self.at - now)


def tighter(own: Deadline, enclosing: Deadline | None) -> Deadline:
    """The deadline that binds: *own*, unless the *enclosing* one comes first."""
    return enclosing if enclosing is not None and enclosing.at < own.at else own
