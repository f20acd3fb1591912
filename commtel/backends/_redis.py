"""Redis connection helpers shared by the distributed limiter and breaker.

Every command runs with short socket timeouts so a stopped Redis answers
quickly with a :class:`~commtel.BackendError` instead of hanging the caller.
"""

from __future__ import annotations

import hashlib
import os

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._exceptions import BackendError, ConfigurationError
from .._optional import requires


__all__ = [
    "LuaScript",
    "ScriptRunner",
    "arun_script",
    "backend_error",
    "hash_tagged",
    "map_redis_errors",
    "redis_client",
    "redis_errors",
    "resp_bulk",
]


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
    with requires("redis"):
        import redis as redis_lib
    return redis_lib.Redis.from_url(
        target,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        health_check_interval=0,
    )


def async_redis_client(target: str | Any, *, timeout_s: float = 0.25) -> Any:
    """Like :func:`redis_client` for redis-py's asyncio client."""
    if not isinstance(target, str):
        return target
    with requires("redis"):
        import redis.asyncio as aredis

    return aredis.Redis.from_url(target, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def hash_tagged(prefix: str, key: str) -> str:
    """``prefix:{key}`` so all keys of one limiter/breaker key live on one Redis Cluster slot."""
    return f"{prefix}:{{{key}}}"


def redis_errors() -> tuple[type[Exception], ...]:
    """The exceptions :func:`map_redis_errors` translates, for hot paths that catch them directly."""
    import redis as redis_lib

    return (redis_lib.RedisError, OSError)


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


class ScriptRunner:
    """Run :class:`LuaScript` objects as ``EVALSHA`` (``EVAL`` on ``NOSCRIPT``) on held connections.

    redis-py's per-command path (pool checkout with a readiness poll, retry wrapper,
    observability hooks) costs more client CPU than a loopback round trip. This keeps
    connections checked out of the client's pool, one per concurrent caller (an idle
    list: ``pop``/``append`` are atomic), and writes each call as one packed buffer.
    A lost connection is retried once on a fresh one, as redis-py's default retry does;
    a timeout is not. Clients without one connection pool (Redis Cluster) go through
    ``evalsha`` unchanged. After a fork the held connections are dropped: the child
    must not share the parent's sockets.
    """

    def __init__(self, client: Any) -> None:
        import redis as redis_lib

        self.client = client
        self._pool: Any = client.connection_pool if isinstance(client, redis_lib.Redis) else None
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._no_script = redis_lib.exceptions.NoScriptError
        self._lost = redis_lib.exceptions.ConnectionError

    def __call__(self, script: LuaScript, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        """Run *script* with *keys* and *args*; the reply as redis-py parses it.

        Raises:
            redis.RedisError: Redis failed, timed out or answered an error.
        """
        if self._pool is None:
            try:
                return self.client.evalsha(script.sha, len(keys), *keys, *args)
            except self._no_script:
                return self.client.eval(script.body, len(keys), *keys, *args)
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        count = b"*%d\r\n" % (len(keys) + len(args) + 3)
        tail = b"".join([resp_bulk(b"%d" % len(keys)), *map(resp_bulk, keys), *map(resp_bulk, args)])
        idle = self._idle
        conn = idle.pop() if idle else self._pool.get_connection()
        try:
            try:
                return self._run(conn, script, count, tail)
            except self._lost:  # not a TimeoutError: that is no ConnectionError in redis-py
                return self._run(conn, script, count, tail)  # redis-py disconnected it: this reconnects
        finally:
            idle.append(conn)

    def _run(self, conn: Any, script: LuaScript, count: bytes, tail: bytes) -> Any:
        conn.send_packed_command([count + script.evalsha_head + tail], check_health=False)
        try:
            return conn.read_response()
        except self._no_script:
            conn.send_packed_command([count + script.eval_head + tail], check_health=False)
            return conn.read_response()

    def close(self) -> None:
        """Give the held connections back to the client's pool."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._pool.release(conn)


async def arun_script(client: Any, script: LuaScript, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
    """Run *script* on redis-py's asyncio *client* (``EVALSHA``, ``EVAL`` on ``NOSCRIPT``).

    Raises:
        redis.RedisError: Redis failed, timed out or answered an error.
    """
    import redis as redis_lib

    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except redis_lib.exceptions.NoScriptError:
        return await client.eval(script.body, len(keys), *keys, *args)
