"""Events the rate limiter emits (built only when someone listens).

None of them carries the rate-limit key: keys are often user ids or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = ["RateLimitBackendFailed", "RateLimitDecided", "RateLimitWaited", "RateLimiterCreated", "ServerThrottled"]


@dataclass(frozen=True, slots=True)
class RateLimiterCreated(Event):
    """A limiter was built; telemetry exposes its decision series at 0 from now on.

    Attributes:
        limiter: The limiter's name.
        platform: Its platform label ("" when none).
        backend: Where its state lives: ``"memory"`` or ``"redis"``.

    .. versionadded:: 0.1.0
    """

    limiter: str
    platform: str
    backend: str


@dataclass(frozen=True, slots=True)
class RateLimitDecided(Event):
    """A limiter admitted or throttled a request.

    .. versionadded:: 0.1.0
    """

    limiter: str
    platform: str
    allowed: bool
    cost: int
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class RateLimitWaited(Event):
    """A blocking ``acquire``/``aacquire`` slept *waited_s* seconds before it was admitted.

    .. versionadded:: 0.1.0
    """

    limiter: str
    platform: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class ServerThrottled(Event):
    """Server feedback (429, Retry-After, RateLimit headers) blocked a key for *delay_s*.

    *source* names the header that decided; *clamped* is true when the server's
    value was absurd and was cut to the limiter's ``max_server_wait_s``.

    .. versionadded:: 0.1.0
    """

    limiter: str
    platform: str
    status: int
    delay_s: float
    source: str
    clamped: bool


@dataclass(frozen=True, slots=True)
class RateLimitBackendFailed(Event):
    """The shared store (e.g. Redis) failed; the limiter answered by its fail-open/closed policy.

    .. versionadded:: 0.1.0
    """

    limiter: str
    backend: str
    error: str
    fail_open: bool
