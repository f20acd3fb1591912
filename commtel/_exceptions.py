"""Exceptions raised by commtel.

::

    CommtelError
    ├── ConfigurationError (also ValueError)   invalid configuration, raised at construction
    ├── RateLimitExceeded                       a limiter refused and the caller chose not to wait
    │   └── RateLimitedByServer                 a server said 429 (carries its Retry-After)
    ├── CircuitOpenError                        a breaker is open; says when it retries
    ├── RetryBudgetExhausted                    the retry budget denied a retry
    ├── OAuthError                              provider or flow errors (carry error code)
    ├── AuthorizationError (also PermissionError) a user read another user's data
    ├── StateTransitionError (also ValueError)  illegal message/task state change
    └── BackendError                            Redis / SQL failure, mapped at the boundary

Messages never contain a secret. When retries run out the last original exception
is re-raised unchanged; :class:`RetryExhausted` is only raised for retries stopped
on a *result* (no exception to re-raise).
"""

from __future__ import annotations


__all__ = [
    "AuthorizationError",
    "BackendError",
    "CircuitOpenError",
    "CommtelError",
    "ConfigurationError",
    "OAuthError",
    "RateLimitExceeded",
    "RateLimitedByServer",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "StateTransitionError",
]


class CommtelError(Exception):
    """Root of every commtel error.

    .. versionadded:: 0.1.0
    """


class ConfigurationError(CommtelError, ValueError):
    """A configuration value is invalid; the message names the field and the fix.

    .. versionadded:: 0.1.0
    """


class RateLimitExceeded(CommtelError):
    """A rate limiter refused a call.

    Args:
        limiter: Name of the limiter that refused.
        retry_after_s: Seconds until the call would be admitted (``None`` if unknown).

    .. versionadded:: 0.1.0
    """

    def __init__(self, limiter: str, retry_after_s: float | None = None, message: str = "") -> None:
        self.limiter = limiter
        self.retry_after_s = retry_after_s
        if not message:
            wait = "" if retry_after_s is None else f"; retry in {retry_after_s:.3f}s"
            message = f"rate limit {limiter!r} exceeded{wait}"
        super().__init__(message)


class RateLimitedByServer(RateLimitExceeded):
    """A remote platform answered 429 (or equivalent) with an optional Retry-After.

    Args:
        platform: Platform that throttled.
        retry_after: Seconds the server asked to wait.

    .. versionadded:: 0.1.0
    """

    def __init__(self, platform: str, retry_after: float | None = None, message: str = "") -> None:
        self.platform = platform
        self.retry_after = retry_after
        super().__init__(
            platform,
            retry_after,
            message
            or f"{platform} rate limited the request"
            + ("" if retry_after is None else f"; retry after {retry_after:g}s"),
        )


class CircuitOpenError(CommtelError):
    """A circuit breaker is open and rejected the call without running it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, breaker: str, retry_after_s: float) -> None:
        self.breaker = breaker
        self.retry_after_s = retry_after_s
        super().__init__(f"circuit {breaker!r} is open; next probe in {retry_after_s:.3f}s")


class RetryExhausted(CommtelError):
    """Retries ran out on a retryable *result*; ``__cause__`` holds the last error if any.

    .. versionadded:: 0.1.0
    """

    def __init__(self, operation: str, attempts: int, last_result: object = None) -> None:
        self.operation = operation
        self.attempts = attempts
        self.last_result = last_result
        super().__init__(f"{operation!r} still failing after {attempts} attempts")


class RetryBudgetExhausted(CommtelError):
    """The retry budget refused a retry; ``__cause__`` is the error that wanted it.

    .. versionadded:: 0.1.0
    """


class OAuthError(CommtelError):
    """An OAuth flow failed; *error* is the provider's code (``invalid_grant`` …).

    .. versionadded:: 0.1.0
    """

    def __init__(self, error: str, description: str | None = None, *, provider: str = "") -> None:
        self.error = error
        self.description = description
        self.provider = provider
        text = f"{provider}: {error}" if provider else error
        super().__init__(f"{text}: {description}" if description else text)


class AuthorizationError(CommtelError, PermissionError):
    """A user asked for data that belongs to another user.

    .. versionadded:: 0.1.0
    """


class StateTransitionError(CommtelError, ValueError):
    """An illegal state change (e.g. completed → in_progress).

    .. versionadded:: 0.1.0
    """


class BackendError(CommtelError):
    """A storage backend (Redis, SQL) failed; ``__cause__`` is the driver's error.

    .. versionadded:: 0.1.0
    """
