"""The older error names and the batch error tracker with its ``get_summary``."""

from __future__ import annotations

from typing import Any

from .._exceptions import RateLimitedByServer
from ..progress import ErrorTracker as _ErrorTracker


__all__ = ["ErrorTracker", "RateLimitError"]

#: ``RateLimitError("twitter", retry_after=60)``: a server throttled the request
#: (:class:`commtel.errors.RateLimitedByServer`).
RateLimitError = RateLimitedByServer


class ErrorTracker(_ErrorTracker):
    """:class:`commtel.ErrorTracker` with ``get_summary()``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def get_summary(self) -> dict[str, Any]:
        """:meth:`summary` under its older name.

        .. versionadded:: 0.1.0
        """
        return self.summary()
