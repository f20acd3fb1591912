"""Redis helpers shared by the distributed rate limiter, circuit breaker and retry budget.

Components reach Redis through :func:`redis_caller`: one shared
:class:`~commtel.backends._redis_link.RedisLink` per URL (or client object) per process,
called with the component's own timeout and cool-down. Importing this module does not
import redis-py; building a caller does.
"""

from __future__ import annotations

import hashlib

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import _validation as check
from .._exceptions import BackendError
from .._optional import requires


if TYPE_CHECKING:
    from ._redis_link import RedisCaller


__all__ = [
    "DEFAULT_COOLDOWN_S",
    "DEFAULT_TIMEOUT_S",
    "LuaScript",
    "backend_error",
    "hash_tagged",
    "map_redis_errors",
    "positive_seconds",
    "redis_caller",
    "redis_errors",
    "resp_bulk",
]

#: Longest a call waits on Redis (for a free connection, then for the reply) by default.
DEFAULT_TIMEOUT_S = 0.25
#: How long a deployment that timed out is skipped (calls answer by their fallback) by default.
DEFAULT_COOLDOWN_S = 2.0


def positive_seconds(value: float | timedelta, what: str) -> float:
    """*value* in seconds, checked to be positive and finite.

    Raises:
        ConfigurationError: Not a positive finite number of seconds.
    """
    owner, _, name = what.rpartition(".")
    return check.duration(value, name, owner=owner, positive=True)


def redis_caller(target: str | Any, *, timeout_s: float, cooldown_s: float) -> RedisCaller:
    """Calls on this process's shared link to *target* (URL or redis-py client), bounded by *timeout_s*.

    Nothing connects here: construction never needs Redis to be up.

    Raises:
        ConfigurationError: *target* is not a URL or client commtel understands.
        ModuleNotFoundError: redis-py is not installed (the message names the extra to install).
    """
    with requires("redis"):
        from ._redis_link import shared_link
    return shared_link(target, timeout_s=timeout_s).caller(timeout_s=timeout_s, cooldown_s=cooldown_s)


def hash_tagged(prefix: str, key: str) -> str:
    """``prefix:{key}`` so all keys of one limiter/breaker key live on one Redis Cluster slot."""
    return f"{prefix}:{{{key}}}"


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call may raise: redis-py errors, socket errors, and :class:`BackendError` (cooling down)."""
    with requires("redis"):
        import redis as redis_lib

    return (redis_lib.RedisError, OSError, BackendError)


def backend_error(what: str, exc: BaseException) -> BackendError:
    """The :class:`BackendError` for *exc* raised during *what* (its cause set, no message from Redis)."""
    error = BackendError(f"redis {what} failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error


@contextmanager
def map_redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py errors into :class:`BackendError` at the boundary."""
    try:
        yield
    except redis_errors() as exc:
        raise backend_error(what, exc) from exc


def resp_bulk(item: bytes) -> bytes:
    """*item* as a RESP bulk string (``$<len>\r\n<item>\r\n``)."""
    return b"$%d\r\n%s\r\n" % (len(item), item)


class LuaScript:
    """A Lua script's body and SHA1, with its ``EVALSHA``/``EVAL`` command heads pre-packed."""

    __slots__ = ("body", "eval_head", "evalsha_head", "sha")

    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()
        self.evalsha_head = b"$7\r\nEVALSHA\r\n" + resp_bulk(self.sha.encode())
        self.eval_head = b"$4\r\nEVAL\r\n" + resp_bulk(body.encode())

    def __repr__(self) -> str:
        return f"LuaScript({self.sha[:12]})"
