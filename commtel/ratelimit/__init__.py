"""Rate limiting: token bucket and exact sliding windows, per key, endpoint and platform.

In memory by default, shared across processes on Redis; server feedback (429,
``Retry-After``, ``RateLimit`` headers) tightens the limits it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._config import PRESETS, RateLimitConfig, preset_limits
    from ._core import RateLimitDecision, SlidingWindow, TokenBucket
    from ._decorator import extract_endpoint_from_url, rate_limited
    from ._events import RateLimitBackendFailed, RateLimitDecided, RateLimitWaited, ServerThrottled
    from ._feedback import ServerFeedback, parse_feedback
    from ._global import GlobalRateLimiter, get_rate_limiter
    from ._limiter import RateLimiter, RateLimitSlot
    from ._memory import MemoryBackend
    from ._redis import RedisBackend
    from ._store import RateLimitBackend, RateLimitStore


__all__ = [
    "PRESETS",
    "GlobalRateLimiter",
    "MemoryBackend",
    "RateLimitBackend",
    "RateLimitBackendFailed",
    "RateLimitConfig",
    "RateLimitDecided",
    "RateLimitDecision",
    "RateLimitSlot",
    "RateLimitStore",
    "RateLimitWaited",
    "RateLimiter",
    "RedisBackend",
    "ServerFeedback",
    "ServerThrottled",
    "SlidingWindow",
    "TokenBucket",
    "extract_endpoint_from_url",
    "get_rate_limiter",
    "parse_feedback",
    "preset_limits",
    "rate_limited",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._config": ("PRESETS", "RateLimitConfig", "preset_limits"),
            "._core": ("RateLimitDecision", "SlidingWindow", "TokenBucket"),
            "._decorator": ("extract_endpoint_from_url", "rate_limited"),
            "._events": ("RateLimitBackendFailed", "RateLimitDecided", "RateLimitWaited", "ServerThrottled"),
            "._feedback": ("ServerFeedback", "parse_feedback"),
            "._global": ("GlobalRateLimiter", "get_rate_limiter"),
            "._limiter": ("RateLimiter", "RateLimitSlot"),
            "._memory": ("MemoryBackend",),
            "._redis": ("RedisBackend",),
            "._store": ("RateLimitBackend", "RateLimitStore"),
        },
    )
