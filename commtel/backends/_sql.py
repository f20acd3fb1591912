"""SQLAlchemy engine set-up shared by the SQL stores (tracker, progress, tokens).

SQLite (the default) gets WAL journaling and a busy timeout so several processes
can share one file; any other URL (PostgreSQL …) is used as given.
"""

from __future__ import annotations

import math

from typing import Any

from .._exceptions import ConfigurationError
from .._optional import requires


__all__ = ["make_engine"]


def make_engine(url: str = "sqlite:///commtel.db", *, busy_timeout_s: float = 30.0, **kwargs: Any) -> Any:
    """A SQLAlchemy engine for *url*; SQLite with WAL and a busy timeout.

    Raises:
        ConfigurationError: *url* is not a URL, or *busy_timeout_s* is not a finite number
            of seconds >= 0.
        ModuleNotFoundError: SQLAlchemy (or the URL's driver, such as psycopg) is not
            installed; the message names the extra to install.
    """
    if (
        isinstance(busy_timeout_s, bool)
        or not isinstance(busy_timeout_s, int | float)
        or not math.isfinite(busy_timeout_s)
        or busy_timeout_s < 0
    ):
        msg = f"busy_timeout_s must be a finite number of seconds >= 0, got {busy_timeout_s!r}"
        raise ConfigurationError(msg)
    with requires("sqlalchemy"):
        from sqlalchemy import create_engine, event
    if "://" not in url:
        msg = f"database URL must look like sqlite:///path.db or postgresql+psycopg://..., got {url!r}"
        raise ConfigurationError(msg)
    if url.startswith("sqlite"):
        connect_args = {"timeout": busy_timeout_s, "check_same_thread": False}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    with requires("psycopg"):
        return create_engine(url, **kwargs)
