"""commtel.backends."""

from __future__ import annotations

from ._memory import MemoryBackend
from ._redis_ratelimit import RedisBackend


__all__ = ["MemoryBackend", "RedisBackend"]
