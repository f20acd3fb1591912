"""Every event commtel's components emit, and the listeners that receive them.

Components decide; listeners observe. Each event is a frozen dataclass handed to
every listener; the telemetry listener (:func:`get_telemetry_listener`) turns them
into span events, Prometheus samples and log lines. Add your own::

    commtel.events.set_listeners([commtel.events.get_telemetry_listener(), my_listener])

``set_listeners(None)`` restores the default (telemetry only), ``set_listeners([])``
turns events off.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from ._events import Event, Listener, get_listeners, set_listeners
from ._telemetry_handlers import get_telemetry_listener
from .breaker._events import (
    CircuitBackendFailed,
    CircuitBreakerCreated,
    CircuitCallRecorded,
    CircuitRejected,
    CircuitStateChanged,
)
from .chaos._events import FaultInjected, FaultInjectorCreated
from .concurrency._events import (
    ConcurrencyAdmitted,
    ConcurrencyLimitChanged,
    ConcurrencyRejected,
    ConcurrencyReleased,
    ConcurrencyWaited,
)
from .fallback._events import FallbackCreated, FallbackUsed
from .hedging._events import HedgeCallFinished, HedgeCreated, HedgeDenied, HedgeLaunched
from .messages._retention import RowsPurged
from .messages._tracker import ConversationTrackerCreated, MessageStateChanged
from .oauth._events import (
    CallbackRejected,
    OAuthClientCreated,
    TokenRejected,
    TokenRequestFinished,
    TokenStoreWriteFailed,
    TokenUpdated,
)
from .progress._errors import ErrorRecorded
from .progress._progress import ProgressTrackerCreated, ProgressUpdated, TaskFinished, TaskStarted
from .ratelimit._events import (
    RateLimitBackendFailed,
    RateLimitDecided,
    RateLimiterCreated,
    RateLimitWaited,
    ServerThrottled,
)
from .retries._events import (
    RetryBudgetBackendFailed,
    RetryBudgetCreated,
    RetryCallFinished,
    RetryDenied,
    RetryGaveUp,
    RetryPolicyCreated,
    RetryScheduled,
)
from .telemetry._operations import OperationCompleted
from .timeouts._events import TimeoutCreated, TimeoutExpired


__all__ = [
    "CallbackRejected",
    "CircuitBackendFailed",
    "CircuitBreakerCreated",
    "CircuitCallRecorded",
    "CircuitRejected",
    "CircuitStateChanged",
    "ConcurrencyAdmitted",
    "ConcurrencyLimitChanged",
    "ConcurrencyRejected",
    "ConcurrencyReleased",
    "ConcurrencyWaited",
    "ConversationTrackerCreated",
    "ErrorRecorded",
    "Event",
    "FallbackCreated",
    "FallbackUsed",
    "FaultInjected",
    "FaultInjectorCreated",
    "HedgeCallFinished",
    "HedgeCreated",
    "HedgeDenied",
    "HedgeLaunched",
    "Listener",
    "MessageStateChanged",
    "OAuthClientCreated",
    "OperationCompleted",
    "ProgressTrackerCreated",
    "ProgressUpdated",
    "RateLimitBackendFailed",
    "RateLimitDecided",
    "RateLimitWaited",
    "RateLimiterCreated",
    "RetryBudgetBackendFailed",
    "RetryBudgetCreated",
    "RetryCallFinished",
    "RetryDenied",
    "RetryGaveUp",
    "RetryPolicyCreated",
    "RetryScheduled",
    "RowsPurged",
    "ServerThrottled",
    "TaskFinished",
    "TaskStarted",
    "TimeoutCreated",
    "TimeoutExpired",
    "TokenRejected",
    "TokenRequestFinished",
    "TokenStoreWriteFailed",
    "TokenUpdated",
    "get_listeners",
    "get_telemetry_listener",
    "set_listeners",
]
