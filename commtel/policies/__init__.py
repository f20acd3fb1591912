"""commtel.policies."""

from __future__ import annotations

from ._breaker import Admission, CircuitBreaker, StateListener
from ._breaker_events import CircuitCallRecorded, CircuitRejected, CircuitStateChanged
from ._budget import RetryBudget
from ._errors import ErrorRecorded, ErrorTracker, TrackedError
from ._headers import MessageHeaderError, MessageHeaders, split_universal_id, universal_id
from ._locks import FileLock, LockTimeoutError
from ._oauth_client import AsyncOAuthClient, AuthorizationRequest, OAuthClient
from ._oauth_compat import OAuthManager, TokenInfo, TokenManager
from ._oauth_errors import (
    InvalidClientError,
    InvalidGrantError,
    NoTokenError,
    OAuthNetworkError,
    OAuthProviderError,
    OAuthStateError,
)
from ._oauth_events import CallbackRejected, TokenRejected, TokenRequestFinished, TokenUpdated
from ._oauth_providers import PROVIDERS as OAUTH_PROVIDERS
from ._oauth_providers import OAuthProvider
from ._oauth_tokens import Token
from ._platform import PlatformContextError, PlatformContextManager, filter_by_platform
from ._progress import (
    ProgressState,
    ProgressStatus,
    ProgressTracker,
    ProgressUpdated,
    TaskFinished,
    TaskStarted,
    progress_bar,
)
from ._ratelimit import RateLimiter, RateLimitSlot
from ._ratelimit_config import PRESETS as RATE_LIMIT_PRESETS
from ._ratelimit_config import RateLimitConfig, preset_limits
from ._ratelimit_core import RateLimitDecision, SlidingWindow, TokenBucket
from ._ratelimit_decorator import extract_endpoint_from_url, rate_limited
from ._ratelimit_events import (
    RateLimitBackendFailed,
    RateLimitDecided,
    RateLimitWaited,
    ServerThrottled,
)
from ._ratelimit_feedback import ServerFeedback, parse_feedback
from ._ratelimit_global import GlobalRateLimiter, get_rate_limiter
from ._ratelimit_store import RateLimitBackend, RateLimitStore
from ._retry import (
    RetryOptions,
    RetryPolicy,
    async_retry,
    retry,
    retry_with_backoff,
    retry_with_rate_limit,
    retrying,
)
from ._retry_config import Jitter, RetryConfig
from ._retry_drivers import Attempt, RetryingBlock
from ._retry_events import RetriesExhausted, RetryBudgetDenied, RetryCallFinished, RetryScheduled
from ._retry_stats import (
    RetryStats,
    get_retry_stats_detailed,
    get_retry_stats_summary,
    reset_retry_stats,
)
from ._token_store import EnvTokenStore, FileTokenStore, MemoryTokenStore, TokenStore
from ._tracker import (
    Claim,
    ConversationTracker,
    MessageState,
    MessageStateChanged,
    ThreadEntry,
    TrackedMessage,
    UnknownMessageError,
)


__all__ = [
    "OAUTH_PROVIDERS",
    "RATE_LIMIT_PRESETS",
    "Admission",
    "AsyncOAuthClient",
    "Attempt",
    "AuthorizationRequest",
    "CallbackRejected",
    "CircuitBreaker",
    "CircuitCallRecorded",
    "CircuitRejected",
    "CircuitStateChanged",
    "Claim",
    "ConversationTracker",
    "EnvTokenStore",
    "ErrorRecorded",
    "ErrorTracker",
    "FileLock",
    "FileTokenStore",
    "GlobalRateLimiter",
    "InvalidClientError",
    "InvalidGrantError",
    "Jitter",
    "LockTimeoutError",
    "MemoryTokenStore",
    "MessageHeaderError",
    "MessageHeaders",
    "MessageState",
    "MessageStateChanged",
    "NoTokenError",
    "OAuthClient",
    "OAuthManager",
    "OAuthNetworkError",
    "OAuthProvider",
    "OAuthProviderError",
    "OAuthStateError",
    "PlatformContextError",
    "PlatformContextManager",
    "ProgressState",
    "ProgressStatus",
    "ProgressTracker",
    "ProgressUpdated",
    "RateLimitBackend",
    "RateLimitBackendFailed",
    "RateLimitConfig",
    "RateLimitDecided",
    "RateLimitDecision",
    "RateLimitSlot",
    "RateLimitStore",
    "RateLimitWaited",
    "RateLimiter",
    "RetriesExhausted",
    "RetryBudget",
    "RetryBudgetDenied",
    "RetryCallFinished",
    "RetryConfig",
    "RetryOptions",
    "RetryPolicy",
    "RetryScheduled",
    "RetryStats",
    "RetryingBlock",
    "ServerFeedback",
    "ServerThrottled",
    "SlidingWindow",
    "StateListener",
    "TaskFinished",
    "TaskStarted",
    "ThreadEntry",
    "Token",
    "TokenBucket",
    "TokenInfo",
    "TokenManager",
    "TokenRejected",
    "TokenRequestFinished",
    "TokenStore",
    "TokenUpdated",
    "TrackedError",
    "TrackedMessage",
    "UnknownMessageError",
    "async_retry",
    "extract_endpoint_from_url",
    "filter_by_platform",
    "get_rate_limiter",
    "get_retry_stats_detailed",
    "get_retry_stats_summary",
    "parse_feedback",
    "preset_limits",
    "progress_bar",
    "rate_limited",
    "reset_retry_stats",
    "retry",
    "retry_with_backoff",
    "retry_with_rate_limit",
    "retrying",
    "split_universal_id",
    "universal_id",
]
