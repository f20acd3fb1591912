"""SQLAlchemy engine set-up shared by the SQL stores (conversation tracker, progress tracker).

SQLite (the default) gets WAL journaling and a busy timeout so several processes
can share one file; PostgreSQL is used through psycopg 3. :func:`make_async_engine`
builds the asyncio twin of an engine for the same URL (aiosqlite, psycopg async).
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._optional import requires


if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine


__all__ = ["is_memory_url", "make_async_engine", "make_engine", "parse_url"]

_SUPPORTED = "sqlite:///path.db, sqlite:// (memory) or postgresql+psycopg://user@host/db"
# backend -> (sync driver, async driver, every driver name a URL may give for it)
_DRIVERS = {
    "sqlite": ("pysqlite", "aiosqlite", {"pysqlite", "aiosqlite"}),
    "postgresql": ("psycopg", "psycopg", {"psycopg", "psycopg_async"}),
}


def _check_busy_timeout(busy_timeout_s: object) -> float:
    if (
        isinstance(busy_timeout_s, bool)
        or not isinstance(busy_timeout_s, int | float)
        or not math.isfinite(busy_timeout_s)
        or busy_timeout_s < 0
    ):
        msg = f"busy_timeout_s must be a finite number of seconds >= 0, got {busy_timeout_s!r}"
        raise ConfigurationError(msg)
    return float(busy_timeout_s)


def parse_url(url: str | URL, *, asynchronous: bool = False) -> URL:
    """*url* with the driver the stores use (pysqlite/aiosqlite, psycopg), or a clear error.

    Raises:
        ConfigurationError: *url* is not a SQLite or PostgreSQL URL.
        ModuleNotFoundError: SQLAlchemy is not installed (the message names the extra).
    """
    with requires("sqlalchemy"):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        msg = f"database URL must look like {_SUPPORTED}, got {url!r}"
        raise ConfigurationError(msg) from exc
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS or ("+" in parsed.drivername and parsed.get_driver_name() not in _DRIVERS[backend][2]):
        msg = f"trackers keep their tables on SQLite or PostgreSQL (psycopg 3): use {_SUPPORTED}, got {parsed.drivername!r}"
        raise ConfigurationError(msg)
    return parsed.set(drivername=f"{backend}+{_DRIVERS[backend][1 if asynchronous else 0]}")


def is_memory_url(url: str | URL) -> bool:
    """Whether *url* names an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``)."""
    parsed = parse_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in {None, "", ":memory:"}


def _engine_options(url: URL, busy_timeout_s: float, kwargs: dict[str, Any]) -> dict[str, Any]:
    if url.get_backend_name() != "sqlite":
        return kwargs
    from sqlalchemy.pool import StaticPool

    if is_memory_url(url):
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    connect_args = {"timeout": busy_timeout_s, "check_same_thread": False, **kwargs.pop("connect_args", {})}
    return {"connect_args": connect_args, **kwargs}


def _sqlite_pragmas(engine: Engine, busy_timeout_s: float) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def make_engine(url: str | URL = "sqlite:///commtel.db", *, busy_timeout_s: float = 30.0, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for *url*; SQLite with WAL and a busy timeout, PostgreSQL on psycopg 3.

    Raises:
        ConfigurationError: *url* is not a SQLite or PostgreSQL URL, or *busy_timeout_s* is
            not a finite number of seconds >= 0.
        ModuleNotFoundError: SQLAlchemy or psycopg is not installed (the message names the extra).
    """
    busy_timeout_s = _check_busy_timeout(busy_timeout_s)
    parsed = parse_url(url)
    from sqlalchemy import create_engine

    with requires("psycopg"):
        engine = create_engine(parsed, **_engine_options(parsed, busy_timeout_s, kwargs))
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine, busy_timeout_s)
    return engine


def make_async_engine(url: str | URL, *, busy_timeout_s: float = 30.0, **kwargs: Any) -> AsyncEngine:
    """The asyncio engine for *url*: aiosqlite for SQLite, psycopg async for PostgreSQL.

    Raises:
        ConfigurationError: As :func:`make_engine`.
        ModuleNotFoundError: greenlet or the async driver is not installed (the message names the extra).
    """
    busy_timeout_s = _check_busy_timeout(busy_timeout_s)
    parsed = parse_url(url, asynchronous=True)
    with requires("greenlet", "aiosqlite", "psycopg"):
        import greenlet  # type: ignore[import-untyped]  # noqa: F401  # SQLAlchemy's asyncio layer runs on it

        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(parsed, **_engine_options(parsed, busy_timeout_s, kwargs))
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine.sync_engine, busy_timeout_s)
    return engine
