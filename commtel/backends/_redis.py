"""Redis connection helpers shared by the distributed limiter and breaker.

Every command runs with short socket timeouts so a stopped Redis answers
quickly with a :class:`~commtel.BackendError` instead of hanging the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._exceptions import BackendError, ConfigurationError


__all__ = ["hash_tagged", "map_redis_errors", "redis_client"]


def redis_client(target: str | Any, *, timeout_s: float = 0.25) -> Any:
    """A redis-py client for *target*: a URL, or an existing (sync or async) client as is.

    URLs get connect and socket timeouts of *timeout_s* and no retries, so a down
    server costs at most about that long per decision.
    """
    if not isinstance(target, str):
        return target
    if not target.startswith(("redis://", "rediss://", "unix://")):
        msg = f"redis URL must start with redis://, rediss:// or unix://, got {target!r}"
        raise ConfigurationError(msg)
    try:
        import redis as redis_lib
    except ImportError as exc:  # pragma: no cover - depends on the install
        msg = "the Redis backend needs redis-py: pip install 'commtel[redis]'"
        raise ConfigurationError(msg) from exc
    return redis_lib.Redis.from_url(
        target, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False,
        health_check_interval=0,
    )


def async_redis_client(target: str | Any, *, timeout_s: float = 0.25) -> Any:
    """Like :func:`redis_client` for redis-py's asyncio client."""
    if not isinstance(target, str):
        return target
    import redis.asyncio as aredis

    return aredis.Redis.from_url(target, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def hash_tagged(prefix: str, key: str) -> str:
    """``prefix:{key}`` so all keys of one limiter/breaker key live on one Redis Cluster slot."""
    return f"{prefix}:{{{key}}}"


@contextmanager
def map_redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py errors into :class:`BackendError` at the boundary."""
    import redis as redis_lib

    try:
        yield
    except (redis_lib.RedisError, OSError) as exc:
        msg = f"redis {what} failed: {type(exc).__name__}"
        raise BackendError(msg) from exc
