"""SQL storage for the conversation tracker and the progress tracker (SQLAlchemy 2.0 Core).

One :class:`TrackerStore` holds both tables, so messages and task progress can
share a database. SQLite (WAL, busy timeout, via :func:`make_engine`) is the
default; PostgreSQL is used by URL. Every statement that changes a state is a
compare-and-set ``UPDATE`` (its ``WHERE`` names the state it expects), so two
processes can never both win the same transition.

Claims are one atomic statement on both databases::

    UPDATE commtel_messages SET state='in_progress', lease_owner=:w, ...
    WHERE id IN (SELECT id ... ORDER BY ... LIMIT :n FOR UPDATE SKIP LOCKED)
      AND (state='pending' OR lease_expires_at < :now)
    RETURNING ...

PostgreSQL's ``SKIP LOCKED`` lets concurrent claimers pass each other's rows;
SQLite runs the statement under its single write lock (it is the first
statement of its transaction, so the busy timeout applies and no stale snapshot
can be upgraded). Store methods take plain strings and floats; the state rules
live in :mod:`commtel.messages._tracker`.
"""

from __future__ import annotations

import os
import threading

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from .._exceptions import BackendError
from .._optional import requires
from ._sql import make_engine


with requires("sqlalchemy"):
    from sqlalchemy import (
        BigInteger,
        Column,
        Connection,
        Double,
        Engine,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        UniqueConstraint,
        and_,
        func,
        insert,
        or_,
        select,
        update,
    )
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError
    from sqlalchemy.pool import StaticPool


__all__ = ["TrackerStore", "messages_table", "metadata", "progress_table"]

_T = TypeVar("_T")
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys
_DEFAULT_FILE = "commtel-tracker.db"
_IN_CHUNK = 500  # ids per IN (...) list: far below every driver's bound-parameter limit

metadata = MetaData()

messages_table = Table(
    "commtel_messages",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("conversation_id", String(998), nullable=False),
    Column("message_id", String(998), nullable=False),
    Column("in_reply_to", String(998)),
    Column("platform", String(64), nullable=False),
    Column("subject", Text),
    Column("state", String(16), nullable=False),
    Column("previous_state", String(16)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(255)),
    Column("lease_expires_at", Double),
    Column("error", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("conversation_id", "message_id", name="uq_commtel_messages_conversation_message"),
    Index("ix_commtel_messages_state_id", "state", "id"),
    Index("ix_commtel_messages_state_lease", "state", "lease_expires_at"),
    Index("ix_commtel_messages_message_id", "message_id"),
)

progress_table = Table(
    "commtel_progress",
    metadata,
    Column("task_id", String(255), primary_key=True),
    Column("user_key", String(255), nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("current_step", Text, nullable=False),
    Column("percent", Double, nullable=False),
    Column("details", Text, nullable=False),
    Column("eta_s", Double),
    Column("error", Text),
    Column("started_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("finished_at", Double),
)

Row = Mapping[str, Any]


def is_memory_url(url: str | URL) -> bool:
    """Whether *url* names an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in {None, "", ":memory:"}


def _url_for(target: str | os.PathLike[str]) -> str:
    text = os.fspath(target)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / _DEFAULT_FILE
    return f"sqlite:///{path}"


class TrackerStore:
    """SQL tables of the conversation and progress trackers on one engine.

    Args:
        target: A database URL (``sqlite:///state.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://...``), a directory (a state path; a
            ``commtel-tracker.db`` file is made inside), a ``.db`` file path, or
            an existing SQLAlchemy :class:`~sqlalchemy.Engine`.
        create_tables: Create missing tables now (idempotent).

    Raises:
        BackendError: The database cannot be reached or the tables not created.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_serial", "engine", "is_postgresql")

    def __init__(self, target: str | os.PathLike[str] | Engine, *, create_tables: bool = True) -> None:
        if isinstance(target, Engine):
            self.engine = target
        else:
            url = _url_for(target)
            # One shared connection, or every pooled connection would see its own empty database.
            self.engine = make_engine(url, poolclass=StaticPool) if is_memory_url(url) else make_engine(url)
        self.is_postgresql = self.engine.dialect.name == "postgresql"
        # An in-memory SQLite database is one connection: threads take turns, one transaction at a time.
        self._serial: AbstractContextManager[object] = (
            threading.RLock() if is_memory_url(self.engine.url) else nullcontext()
        )
        if create_tables:
            self._run(lambda: metadata.create_all(self.engine))

    def __repr__(self) -> str:
        return f"TrackerStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Release the engine's pooled connections."""
        self.engine.dispose()

    def _run(self, fn: Callable[[], _T]) -> _T:
        try:
            with self._serial:
                return fn()
        except SQLAlchemyError as exc:
            msg = f"tracker database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            raise BackendError(msg) from exc

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self._serial, self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            msg = f"tracker database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            raise BackendError(msg) from exc

    # -- messages --------------------------------------------------------------------------

    def insert_messages(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert message rows, skipping any (conversation, message) already stored; returns how many were new."""
        if not rows:
            return 0
        with self._begin() as conn:
            if self.engine.dialect.name in {"postgresql", "sqlite"}:
                dialect_insert: Any
                if self.is_postgresql:
                    from sqlalchemy.dialects.postgresql import insert as dialect_insert
                else:
                    from sqlalchemy.dialects.sqlite import insert as dialect_insert
                stmt = dialect_insert(messages_table).on_conflict_do_nothing()
                return int(conn.execute(stmt, list(rows)).rowcount)
        inserted = 0
        for row in rows:  # other databases: one row at a time, duplicates rejected by the constraint
            try:
                with self._begin() as conn:
                    conn.execute(insert(messages_table), [dict(row)])
                inserted += 1
            except BackendError as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
        return inserted

    def get_message(self, conversation_id: str, message_id: str) -> Row | None:
        """The stored row of one message, or ``None``."""
        t = messages_table
        stmt = select(t).where(t.c.conversation_id == conversation_id, t.c.message_id == message_id)
        with self._begin() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def conversations_of(self, message_ids: Iterable[str]) -> dict[str, str]:
        """Map each of *message_ids* already stored to its conversation."""
        ids = list(dict.fromkeys(message_ids))
        t = messages_table
        found: dict[str, str] = {}
        with self._begin() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                stmt = select(t.c.message_id, t.c.conversation_id).where(t.c.message_id.in_(chunk))
                found.update((m, c) for m, c in conn.execute(stmt))
        return found

    def compare_and_set(self, row_id: int, expected: Mapping[str, Any], values: Mapping[str, Any]) -> Row | None:
        """Apply *values* to row *row_id* only if its columns still equal *expected*; the new row or ``None``."""
        t = messages_table
        conditions = [t.c.id == row_id, *(t.c[name] == value for name, value in expected.items())]
        with self._begin() as conn:
            row = conn.execute(update(t).where(*conditions).values(**values).returning(*t.c)).mappings().first()
        return None if row is None else dict(row)

    def messages_by_id(self, message_ids: Iterable[str]) -> list[Row]:
        """Stored rows whose message id is one of *message_ids*."""
        ids = list(dict.fromkeys(message_ids))
        t = messages_table
        rows: list[Row] = []
        with self._begin() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                stmt = select(t).where(t.c.message_id.in_(ids[start : start + _IN_CHUNK]))
                rows.extend(dict(r) for r in conn.execute(stmt).mappings())
        return rows

    def claim(
        self,
        worker_id: str,
        *,
        now: float,
        lease_expires_at: float,
        limit: int,
        conversation_id: str | None = None,
        platform: str | None = None,
    ) -> list[Row]:
        """Atomically move up to *limit* claimable messages to in_progress under *worker_id*'s lease.

        Claimable: pending, or in_progress with a lease that expired before *now*
        (its worker died). Oldest first. Returns the claimed rows; their
        ``previous_state`` says whether a message was pending or reclaimed.
        """
        t = messages_table
        claimable = or_(t.c.state == "pending", and_(t.c.state == "in_progress", t.c.lease_expires_at < now))
        filters = [claimable]
        if conversation_id is not None:
            filters.append(t.c.conversation_id == conversation_id)
        if platform is not None:
            filters.append(t.c.platform == platform)
        candidates = select(t.c.id).where(*filters).order_by(t.c.id).limit(limit)
        if self.is_postgresql:
            candidates = candidates.with_for_update(skip_locked=True)
        # A MATERIALIZED CTE is evaluated exactly once. PostgreSQL may re-run a plain
        # `IN (SELECT ... LIMIT n)` subplan per row, and would then claim more than n.
        chosen = candidates.cte("commtel_claimable").prefix_with("MATERIALIZED")
        stmt = (
            update(t)
            .where(t.c.id == chosen.c.id, claimable)
            .values(
                state="in_progress",
                previous_state=t.c.state,  # SET reads the old row: tells a reclaim from a first claim
                lease_owner=worker_id,
                lease_expires_at=lease_expires_at,
                attempts=t.c.attempts + 1,
                updated_at=now,
                error=None,
            )
            .returning(*t.c)
        )
        with self._begin() as conn:
            rows: list[Row] = [dict(r) for r in conn.execute(stmt).mappings()]
        rows.sort(key=lambda r: r["id"])
        return rows

    def renew(self, row_id: int, attempt: int, worker_id: str, lease_expires_at: float, now: float) -> bool:
        """Extend a lease still held by *worker_id* (same attempt); ``False`` if it was lost."""
        return None is not self.compare_and_set(
            row_id,
            {"state": "in_progress", "attempts": attempt, "lease_owner": worker_id},
            {"lease_expires_at": lease_expires_at, "updated_at": now},
        )

    def list_messages(
        self, *, conversation_id: str | None = None, state: str | None = None, limit: int | None = None
    ) -> list[Row]:
        """Rows in insertion order, optionally of one conversation and/or one state."""
        t = messages_table
        stmt = select(t).order_by(t.c.id)
        if conversation_id is not None:
            stmt = stmt.where(t.c.conversation_id == conversation_id)
        if state is not None:
            stmt = stmt.where(t.c.state == state)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._begin() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def count_messages(self) -> dict[str, int]:
        """Number of messages per state."""
        t = messages_table
        with self._begin() as conn:
            return {state: int(n) for state, n in conn.execute(select(t.c.state, func.count()).group_by(t.c.state))}

    # -- progress --------------------------------------------------------------------------

    def insert_progress(self, row: Mapping[str, Any]) -> Row:
        """Insert a progress row unless the task exists; returns the stored row either way."""
        try:
            with self._begin() as conn:
                conn.execute(insert(progress_table), [dict(row)])
        except BackendError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        found = self.get_progress(row["task_id"])
        if found is None:  # pragma: no cover - deleted between the two statements
            msg = f"progress session {row['task_id']!r} vanished"
            raise BackendError(msg)
        return found

    def get_progress(self, task_id: str) -> Row | None:
        """The progress row of *task_id*, or ``None``."""
        stmt = select(progress_table).where(progress_table.c.task_id == task_id)
        with self._begin() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def update_progress(self, task_id: str, expected_state: str, values: Mapping[str, Any]) -> bool:
        """Apply *values* to *task_id* if it is still in *expected_state*."""
        t = progress_table
        stmt = update(t).where(t.c.task_id == task_id, t.c.state == expected_state).values(**values)
        with self._begin() as conn:
            return bool(conn.execute(stmt).rowcount == 1)

    def list_progress(self, user_key: str) -> list[Row]:
        """Progress rows of one user, oldest first."""
        t = progress_table
        stmt = select(t).where(t.c.user_key == user_key).order_by(t.c.started_at)
        with self._begin() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]
