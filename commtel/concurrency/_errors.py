"""The error a concurrency limiter (bulkhead or adaptive limiter) raises when it is full."""

from __future__ import annotations

from .._exceptions import CommtelError


__all__ = ["ConcurrencyLimitExceeded"]

_KINDS = {"bulkhead": "bulkhead", "adaptive": "adaptive limiter"}


class ConcurrencyLimitExceeded(CommtelError):
    """A bulkhead or adaptive limiter refused a call: its limit of calls in flight was reached.

    The call did not run. Like a rate-limit refusal this is back-pressure, not a failure
    of the dependency: breakers do not count it.

    Attributes:
        limiter: The limiter's name.
        kind: ``"bulkhead"`` or ``"adaptive"``.
        limit: The limit of calls in flight when it refused.
        waited_s: How long the caller waited for a slot first (0 when it did not wait).

    .. versionadded:: 0.1.0
    """

    def __init__(self, limiter: str, limit: int, *, kind: str = "bulkhead", waited_s: float = 0.0) -> None:
        self.limiter = limiter
        self.kind = kind
        self.limit = limit
        self.waited_s = waited_s
        waited = f" after waiting {waited_s:.3f}s" if waited_s > 0 else ""
        super().__init__(f"{_KINDS.get(kind, kind)} {limiter!r} is full: {limit} calls in flight{waited}")
