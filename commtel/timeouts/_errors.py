"""The error a timeout raises when it cut a call off."""

from __future__ import annotations

from .._exceptions import CommtelError


__all__ = ["TimeoutExceeded"]


class TimeoutExceeded(CommtelError, TimeoutError):
    """A timeout cut a call or attempt off (or its deadline had passed before it started).

    A :class:`TimeoutError`, so ``except TimeoutError`` handles it, retry policies retry it
    as a timeout, breakers count it as a failure and adaptive limiters as overload.

    Attributes:
        timeout: The name of the timeout that expired.
        scope: ``"attempt"`` (one attempt) or ``"total"`` (the whole call, retries included).
        timeout_s: Its length in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(self, timeout: str, scope: str, timeout_s: float) -> None:
        self.timeout = timeout
        self.scope = scope
        self.timeout_s = timeout_s
        super().__init__(f"{scope} timeout {timeout!r} of {timeout_s:g}s expired")
