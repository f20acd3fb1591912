"""SQL stores of the conversation and progress trackers: one sync and one asyncio driver.

Both run the same sans-I/O operations (:data:`~commtel.backends._sql_queries.Op`):
an operation yields :class:`~commtel.backends._sql_queries.Query` objects and
receives each answer (rows or a row count). The drivers take a connection from
SQLAlchemy's pool, send each query's SQL straight to the driver (psycopg,
sqlite3, aiosqlite) in autocommit mode, and map driver errors to
:class:`~commtel.BackendError` (thrown into the operation, which may handle it).

SQLite (WAL, busy timeout, via :func:`~commtel.backends._sql.make_engine`) is
the default; PostgreSQL is used by URL. An in-memory SQLite database is a
single connection: its store runs one operation at a time (threads or tasks
take turns), so ``sqlite://`` is safe to share, if not fast.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import BackendError, ConfigurationError
from .._optional import requires
from ._sql import is_memory_url, make_async_engine, make_engine, parse_url
from ._sql_queries import Op, Query, TrackerSQL, sql_for
from ._sql_schema import metadata


with requires("sqlalchemy"):
    from sqlalchemy import Connection, Engine
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError
    from sqlalchemy.pool import StaticPool


if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


__all__ = ["AsyncTrackerStore", "TrackerStore", "database_url"]

_T = TypeVar("_T")
_DEFAULT_FILE = "commtel-tracker.db"
_CREATE_ATTEMPTS = 3  # processes creating the tables at once: the losers find them on the next look


def database_url(target: str | os.PathLike[str]) -> str:
    """The database URL for *target*: a URL as given, a directory (gets a tracker file), or a file path."""
    text = os.fspath(target)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / _DEFAULT_FILE
    return f"sqlite:///{path}"


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the install
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


def backend_error(exc: BaseException) -> BackendError:
    """A :class:`BackendError` naming *exc* in one line (its cause is *exc*)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    error = BackendError(f"tracker database error: {type(exc).__name__}: {text}")
    error.__cause__ = exc
    return error


def _broken(native: Any) -> bool:
    """Whether a driver connection is unusable after an error (psycopg says so; sqlite3 never is)."""
    return bool(getattr(native, "broken", False) or getattr(native, "closed", False) is True)


def _in_transaction(native: Any) -> bool:
    info = getattr(native, "info", None)  # psycopg: ConnectionInfo; sqlite3 / aiosqlite: in_transaction
    if info is not None and hasattr(info, "transaction_status"):
        return int(info.transaction_status) != 0  # psycopg.pq.TransactionStatus.IDLE
    return bool(native.in_transaction)


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)
    for table in metadata.sorted_tables:  # tables made by an older version get the newer indexes
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _check_engine(engine: Engine) -> None:
    """Refuse an engine the stores cannot use: another database or driver, or memory that threads would split."""
    parse_url(engine.url.set(drivername=f"{engine.dialect.name}+{engine.dialect.driver}"))
    if is_memory_url(engine.url) and not isinstance(engine.pool, StaticPool):
        msg = (
            "an in-memory SQLite engine needs poolclass=StaticPool (else each pooled connection is its own "
            "empty database); pass the URL 'sqlite://' instead, or a file URL such as 'sqlite:///state.db'"
        )
        raise ConfigurationError(msg)


class _IdleConnections:
    """Pooled connections a sync store keeps checked out between operations.

    Taking one back from this LIFO costs a list pop instead of a pool checkout
    and check-in (about a third of a tracker call's own CPU). It keeps at most
    ``pool size`` connections; a forked child drops its parent's and starts afresh.
    """

    __slots__ = ("_engine", "_idle", "_pid", "_size")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: list[Any] = []
        self._pid = os.getpid()
        size = getattr(engine.pool, "size", None)
        self._size = size() if callable(size) else 1

    def take(self) -> Any:
        """A connection: the last one given back, else a new checkout from the engine's pool."""
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours to use
            self._idle, self._pid = [], os.getpid()
            self._engine.dispose(close=False)
        try:
            return self._idle.pop()
        except IndexError:
            pass
        try:
            return self._engine.raw_connection()
        except SQLAlchemyError as exc:
            raise backend_error(exc) from exc

    def give(self, pooled: Any) -> None:
        """Keep *pooled* for the next operation, or return it to the pool (always, if it was invalidated)."""
        if pooled.is_valid and len(self._idle) < self._size:
            self._idle.append(pooled)
        else:
            pooled.close()

    def close(self) -> None:
        """Return every kept connection to the pool."""
        while self._idle:
            self._idle.pop().close()


class _StoreBase:
    __slots__ = ("_owns_engine", "is_postgresql", "sql")

    sql: TrackerSQL
    is_postgresql: bool
    _owns_engine: bool

    def _use(self, backend: str) -> None:
        self.sql = sql_for(backend)
        self.is_postgresql = backend == "postgresql"


class TrackerStore(_StoreBase):
    """The SQL tables of the conversation and progress trackers, on one engine.

    Args:
        target: A database URL (``sqlite:///state.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://...``), a state directory (a ``commtel-tracker.db``
            file is made inside), a ``.db`` file path, or a SQLAlchemy
            :class:`~sqlalchemy.Engine` on SQLite or psycopg.
        create_tables: Create missing tables and indexes now (idempotent).

    Raises:
        ConfigurationError: *target* is not SQLite or PostgreSQL on psycopg.
        BackendError: The database cannot be reached or the tables not created.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_idle", "_serial", "engine")

    def __init__(self, target: str | os.PathLike[str] | Engine, *, create_tables: bool = True) -> None:
        if isinstance(target, Engine):
            _check_engine(target)
            self.engine, self._owns_engine = target, False
        else:
            self.engine, self._owns_engine = make_engine(database_url(target), isolation_level="AUTOCOMMIT"), True
        self._use(self.engine.dialect.name)
        self._idle = _IdleConnections(self.engine)
        # An in-memory SQLite database is one connection: threads take turns, one operation at a time.
        self._serial: AbstractContextManager[object] = (
            threading.RLock() if is_memory_url(self.engine.url) else nullcontext()
        )
        if create_tables:
            self.create_tables()

    def __repr__(self) -> str:
        return f"TrackerStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def create_tables(self) -> None:
        """Create the tables and indexes that are missing.

        Raises:
            BackendError: The database cannot be reached or refused the DDL.
        """
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with self._serial, self.engine.begin() as conn:
                    _create_schema(conn)
            except DBAPIError as exc:  # another process created them between our look and our CREATE
                if attempt == _CREATE_ATTEMPTS - 1 or exc.connection_invalidated:
                    raise backend_error(exc) from exc
            except SQLAlchemyError as exc:
                raise backend_error(exc) from exc
            else:
                return

    def close(self) -> None:
        """Return the connections this store holds; release the pool of an engine it made."""
        self._idle.close()
        if self._owns_engine:
            self.engine.dispose()

    def run(self, op: Op[_T]) -> _T:
        """Run a sans-I/O operation on one pooled connection, each query in autocommit.

        Raises:
            BackendError: The database failed and the operation did not handle it.
        """
        with self._serial:
            pooled = self._idle.take()
            try:
                return self._drive(op, pooled)
            finally:
                self._idle.give(pooled)

    @staticmethod
    def _drive(op: Op[_T], pooled: Any) -> _T:
        native = pooled.driver_connection
        answer: Any = None
        error: BackendError | None = None
        while True:
            try:
                query = op.send(answer) if error is None else op.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                answer, error = _execute(native, query), None
            except _DRIVER_ERRORS as exc:
                answer, error = None, backend_error(exc)
                if _broken(native):
                    pooled.invalidate()
                    op.close()
                    raise error from exc
                if _in_transaction(native):
                    native.rollback()


def _execute(native: Any, query: Query) -> Any:
    cursor = native.execute(query.sql, query.params or {})
    try:
        answer = cursor.fetchall() if query.rows else cursor.rowcount
    finally:
        cursor.close()
    if _in_transaction(native):  # an engine that is not in autocommit mode: each query is its own transaction
        native.commit()
    return answer


class AsyncTrackerStore(_StoreBase):
    """The asyncio twin of :class:`TrackerStore` (aiosqlite, psycopg async): same tables, same queries.

    Tables are created on first use. Use one store per event loop.

    Args:
        target: A database URL, state directory or ``.db`` path as for
            :class:`TrackerStore`, or a SQLAlchemy
            :class:`~sqlalchemy.ext.asyncio.AsyncEngine` on aiosqlite or psycopg.
        create_tables: Create missing tables and indexes on first use.

    Raises:
        ConfigurationError: *target* is not SQLite or PostgreSQL, or the async driver is missing.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_create", "_idle", "_idle_size", "_ready", "_serial", "engine")

    def __init__(self, target: str | os.PathLike[str] | AsyncEngine, *, create_tables: bool = True) -> None:
        if isinstance(target, str | os.PathLike):
            self.engine = make_async_engine(database_url(target), isolation_level="AUTOCOMMIT")
            self._owns_engine = True
        else:
            if not hasattr(target, "sync_engine"):
                msg = f"an async tracker store needs a URL, a path or an AsyncEngine, got {type(target).__name__}"
                raise ConfigurationError(msg)
            _check_engine(target.sync_engine)
            self.engine, self._owns_engine = target, False
        self._use(self.engine.dialect.name)
        self._create = create_tables
        self._ready = asyncio.Lock()
        self._serial: asyncio.Lock | None = asyncio.Lock() if is_memory_url(self.engine.url) else None
        # Connections kept checked out between operations: a checkout and check-in each cost a greenlet hop.
        self._idle: list[tuple[Any, Any]] = []
        size = getattr(self.engine.sync_engine.pool, "size", None)
        self._idle_size = size() if callable(size) else 1

    def __repr__(self) -> str:
        return f"AsyncTrackerStore({self.engine.url.render_as_string(hide_password=True)!r})"

    async def create_tables(self) -> None:
        """Create the tables and indexes that are missing (runs once; later calls return at once).

        Raises:
            BackendError: The database cannot be reached or refused the DDL.
        """
        if not self._create:
            return
        async with self._ready:
            for attempt in range(_CREATE_ATTEMPTS):
                if not self._create:
                    return
                try:
                    async with self.engine.begin() as conn:
                        await conn.run_sync(_create_schema)
                    self._create = False
                except DBAPIError as exc:
                    if attempt == _CREATE_ATTEMPTS - 1 or exc.connection_invalidated:
                        raise backend_error(exc) from exc
                except SQLAlchemyError as exc:
                    raise backend_error(exc) from exc

    async def aclose(self) -> None:
        """Return the connections this store holds; release the pool of an engine it made."""
        while self._idle:
            conn, _native = self._idle.pop()
            await conn.close()
        if self._owns_engine:
            await self.engine.dispose()

    async def run(self, op: Op[_T]) -> _T:
        """Run a sans-I/O operation on one pooled connection, each query in autocommit.

        Raises:
            BackendError: The database failed and the operation did not handle it.
        """
        if self._create:
            await self.create_tables()
        if self._serial is None:
            return await self._run(op)
        async with self._serial:
            return await self._run(op)

    async def _run(self, op: Op[_T]) -> _T:
        conn, native = await self._take()
        try:
            return await self._drive(op, conn, native)
        finally:
            if conn.invalidated or len(self._idle) >= self._idle_size:
                await conn.close()
            else:
                self._idle.append((conn, native))

    async def _take(self) -> tuple[Any, Any]:
        """A connection kept from an earlier operation (a list pop), else a new one from the pool."""
        if self._idle:
            return self._idle.pop()
        try:
            conn = await self.engine.connect()
            pooled = await conn.get_raw_connection()
        except SQLAlchemyError as exc:
            raise backend_error(exc) from exc
        return conn, pooled.driver_connection

    @staticmethod
    async def _drive(op: Op[_T], conn: Any, native: Any) -> _T:
        answer: Any = None
        error: BackendError | None = None
        while True:
            try:
                query = op.send(answer) if error is None else op.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                answer, error = await _aexecute(native, query), None
            except _DRIVER_ERRORS as exc:
                answer, error = None, backend_error(exc)
                if _broken(native):
                    await conn.invalidate()
                    op.close()
                    raise error from exc
                if _in_transaction(native):
                    await native.rollback()


async def _aexecute(native: Any, query: Query) -> Any:
    cursor = await native.execute(query.sql, query.params or {})
    try:
        answer = await cursor.fetchall() if query.rows else cursor.rowcount
    finally:
        await cursor.close()
    if _in_transaction(native):
        await native.commit()
    return answer
