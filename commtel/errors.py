"""Every error commtel raises, in one place.

::

    CommtelError
    ├── ConfigurationError (also ValueError)     invalid configuration, raised at construction
    ├── RateLimitExceeded                         a limiter refused and the caller chose not to wait
    │   └── RateLimitedByServer                   a server said 429 (carries its Retry-After)
    ├── CircuitOpenError                          a breaker is open; says when it retries
    ├── ConcurrencyLimitExceeded                  a bulkhead or adaptive limiter is full
    ├── TimeoutExceeded (also TimeoutError)       a timeout cut a call or attempt off
    ├── InjectedFault (also ConnectionError)      a fault injector's default error
    ├── RetryExhausted                            retries ran out on a rejected result
    ├── RetryBudgetExhausted                      the retry budget denied a retry
    ├── OAuthError                                provider or flow errors (carry the error code)
    │   ├── OAuthProviderError
    │   │   ├── InvalidGrantError
    │   │   └── InvalidClientError
    │   ├── OAuthNetworkError
    │   ├── OAuthStateError
    │   └── NoTokenError
    ├── AuthorizationError (also PermissionError) a user read another user's data
    ├── StateTransitionError (also ValueError)    illegal message/task state change
    ├── UnknownMessageError (also KeyError)       the tracker holds no such message
    ├── MessageHeaderError (also ValueError)      malformed message headers
    ├── LockTimeoutError (also TimeoutError)      a file lock was not acquired in time
    ├── PlatformContextError                      no valid platform context
    └── BackendError                              Redis / SQL failure, mapped at the boundary

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from ._exceptions import (
    AuthorizationError,
    BackendError,
    CircuitOpenError,
    CommtelError,
    ConfigurationError,
    OAuthError,
    RateLimitedByServer,
    RateLimitExceeded,
    RetryBudgetExhausted,
    RetryExhausted,
    StateTransitionError,
)
from .chaos._injector import InjectedFault
from .concurrency._errors import ConcurrencyLimitExceeded
from .context._platform import PlatformContextError
from .messages._headers import MessageHeaderError
from .messages._locks import LockTimeoutError
from .messages._tracker import UnknownMessageError
from .oauth._errors import (
    InvalidClientError,
    InvalidGrantError,
    NoTokenError,
    OAuthNetworkError,
    OAuthProviderError,
    OAuthStateError,
)
from .timeouts._errors import TimeoutExceeded


__all__ = [
    "AuthorizationError",
    "BackendError",
    "CircuitOpenError",
    "CommtelError",
    "ConcurrencyLimitExceeded",
    "ConfigurationError",
    "InjectedFault",
    "InvalidClientError",
    "InvalidGrantError",
    "LockTimeoutError",
    "MessageHeaderError",
    "NoTokenError",
    "OAuthError",
    "OAuthNetworkError",
    "OAuthProviderError",
    "OAuthStateError",
    "PlatformContextError",
    "RateLimitExceeded",
    "RateLimitedByServer",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "StateTransitionError",
    "TimeoutExceeded",
    "UnknownMessageError",
]
