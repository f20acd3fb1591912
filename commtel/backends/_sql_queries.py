"""The trackers' SQL, compiled once per database kind; sans-I/O operations yield it.

Every statement is built with SQLAlchemy Core and compiled once (per process and
database kind) to driver SQL with named parameters; the drivers
(:mod:`commtel.backends._sql_store`) send it straight to psycopg or sqlite3, so
a hot-path call costs one round trip and no per-call compilation, and psycopg
prepares it on the server after a few runs. Each statement runs on its own in
autocommit mode: every state change is one compare-and-set ``UPDATE`` (its
``WHERE`` names the state it expects), so two processes never both win a
transition.

A claim is one statement that probes two partial indexes — expired leases by
expiry, pending messages by id — and moves at most *n* of them to in_progress::

    WITH expired AS MATERIALIZED (SELECT id ... WHERE state = 'in_progress'
                                  AND lease_expires_at < :now ORDER BY lease_expires_at
                                  LIMIT :n FOR UPDATE SKIP LOCKED),
         pending AS MATERIALIZED (SELECT id ... WHERE state = 'pending'
                                  ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)
    UPDATE commtel_messages SET state = 'in_progress', ...
    FROM (SELECT id FROM expired UNION ALL SELECT id FROM pending LIMIT :n) AS chosen
    WHERE id = chosen.id AND (still claimable) RETURNING <what a claim needs>

PostgreSQL's ``SKIP LOCKED`` lets concurrent claimers pass each other's rows;
SQLite runs the statement under its single write lock. A MATERIALIZED CTE is
evaluated once (PostgreSQL may re-run a plain ``IN (SELECT ... LIMIT n)`` per row).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeAlias, TypeVar

from .._optional import requires
from ._sql_schema import FINISHED, messages_table, progress_table, state_is


with requires("sqlalchemy"):
    from sqlalchemy import (
        CTE,
        ClauseElement,
        Integer,
        and_,
        bindparam,
        delete,
        func,
        literal_column,
        or_,
        select,
        union_all,
        update,
    )
    from sqlalchemy.engine import Dialect


__all__ = ["CLAIM_COLUMNS", "MESSAGE_COLUMNS", "PROGRESS_COLUMNS", "Op", "Query", "TrackerSQL", "sql_for"]

_T = TypeVar("_T")

m = messages_table.c
p = progress_table.c

#: Columns of a full message row, in the order rows come back.
MESSAGE_COLUMNS = (
    m.id,
    m.conversation_id,
    m.message_id,
    m.in_reply_to,
    m.platform,
    m.subject,
    m.state,
    m.previous_state,
    m.attempts,
    m.lease_owner,
    m.lease_expires_at,
    m.error,
    m.created_at,
    m.updated_at,
)
#: What a claim returns: the rest of the row is known to the claimer.
CLAIM_COLUMNS = (
    m.id,
    m.conversation_id,
    m.message_id,
    m.in_reply_to,
    m.platform,
    m.subject,
    m.attempts,
    m.created_at,
    m.previous_state,
)
PROGRESS_COLUMNS = (
    p.task_id,
    p.user_key,
    p.kind,
    p.state,
    p.current_step,
    p.percent,
    p.details,
    p.eta_s,
    p.error,
    p.started_at,
    p.updated_at,
    p.finished_at,
)


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    defaults: Mapping[str, Any]

    def __call__(self, params: Mapping[str, Any] | None = None, *, rows: bool = True) -> Query:
        if self.defaults:
            params = {**self.defaults, **(params or {})}
        return Query(self.sql, params, rows)


@dataclass(frozen=True, slots=True)
class Query:
    """One statement to run: its driver SQL, its parameters, and whether rows come back.

    The driver answers with the list of row tuples (*rows* true) or the row count.
    """

    sql: str
    params: Mapping[str, Any] | None = None
    rows: bool = True


#: A sans-I/O operation: yields queries, receives each answer, returns its result.
Op: TypeAlias = Generator[Query, Any, _T]


def _literal(value: str) -> ClauseElement:
    return literal_column(f"'{value}'")


class TrackerSQL:
    """Compiled statements of the trackers for one database kind (``sqlite`` or ``postgresql``)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.postgresql = backend == "postgresql"
        self.dialect = _dialect(backend)
        self._claims: dict[tuple[bool, bool], _Prepared] = {}
        self._insert_message = self._compile(
            self._insert(messages_table)
            .values({c.name: bindparam(c.name) for c in messages_table.c if c.name != "id"})
            .on_conflict_do_nothing()
            .returning(m.id)
        )
        self._get_message = self._compile(
            select(*MESSAGE_COLUMNS).where(
                m.conversation_id == bindparam("conversation_id"), m.message_id == bindparam("message_id")
            )
        )
        self._finish = self._compile(
            update(messages_table)
            .where(*self._held())
            .values(
                state=bindparam("new_state"),
                previous_state=_literal("in_progress"),
                lease_expires_at=None,
                updated_at=bindparam("now"),
                error=bindparam("error"),
            )
        )
        self._renew = self._compile(
            update(messages_table)
            .where(*self._held())
            .values(lease_expires_at=bindparam("expires"), updated_at=bindparam("now"))
        )
        self._set_state = self._compile(
            update(messages_table)
            .where(
                m.id == bindparam("row_id"),
                m.state == bindparam("expected_state"),
                m.attempts == bindparam("expected_attempts"),
            )
            .values(
                state=bindparam("new_state"),
                previous_state=m.state,
                attempts=bindparam("new_attempts"),
                lease_owner=bindparam("owner"),
                lease_expires_at=bindparam("expires"),
                updated_at=bindparam("now"),
                error=bindparam("error"),
            )
            .returning(*MESSAGE_COLUMNS)
        )
        self._count = self._compile(select(m.state, func.count()).group_by(m.state))
        self._purge_messages = self._compile(self._purge(messages_table, m.id, state_is(*FINISHED), m.updated_at))
        self._insert_progress = self._compile(
            self._insert(progress_table)
            .values({c.name: bindparam(c.name) for c in progress_table.c})
            .on_conflict_do_nothing()
        )
        self._get_progress = self._compile(select(*PROGRESS_COLUMNS).where(p.task_id == bindparam("task_id")))
        running = (p.task_id == bindparam("task_id"), state_is("running", table=progress_table))
        self._update_progress = self._compile(
            update(progress_table)
            .where(*running)
            .values(
                current_step=bindparam("step"),
                percent=bindparam("percent"),
                details=bindparam("details"),
                eta_s=bindparam("eta"),
                updated_at=bindparam("now"),
            )
        )
        self._finish_progress = self._compile(
            update(progress_table)
            .where(*running)
            .values(
                state=bindparam("outcome"),
                percent=func.coalesce(bindparam("final_percent", type_=p.percent.type), p.percent),
                eta_s=bindparam("eta"),
                error=bindparam("error"),
                updated_at=bindparam("now"),
                finished_at=bindparam("now"),
            )
        )
        self._list_progress = self._compile(
            select(*PROGRESS_COLUMNS).where(p.user_key == bindparam("user_key")).order_by(p.started_at)
        )
        self._purge_progress = self._compile(
            self._purge(progress_table, p.task_id, p.finished_at.is_not(None), p.finished_at)
        )

    # -- building ---------------------------------------------------------------------------

    def _compile(self, stmt: ClauseElement) -> _Prepared:
        compiled: Any = stmt.compile(dialect=self.dialect)
        binds = compiled.binds
        # Values SQLAlchemy bound itself (a literal 1, a NULL, an OFFSET); callers' names override them.
        defaults = {k: v for k, v in compiled.params.items() if k not in binds or not binds[k].required}
        return _Prepared(compiled.string, defaults)

    def _adhoc(self, stmt: ClauseElement, *, rows: bool = True) -> Query:
        compiled = stmt.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        return Query(compiled.string, compiled.params, rows)

    def _insert(self, table: Any) -> Any:
        if self.postgresql:
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    @staticmethod
    def _held() -> tuple[Any, ...]:
        return (
            m.id == bindparam("row_id"),
            state_is("in_progress"),
            m.attempts == bindparam("attempt"),
            m.lease_owner == bindparam("worker"),
        )

    def _locked(self, stmt: Any) -> Any:
        return stmt.with_for_update(skip_locked=True) if self.postgresql else stmt

    def _purge(self, table: Any, key: Any, finished: Any, finished_at: Any) -> Any:
        victims: CTE = (
            self._locked(
                select(key)
                .where(finished, finished_at < bindparam("cutoff"))
                .order_by(finished_at)
                .limit(bindparam("batch", type_=Integer))
            )
            .cte("commtel_victims")
            .prefix_with("MATERIALIZED")
        )
        # RETURNING counts the rows: sqlite3 reports no row count for a statement that starts with WITH.
        return delete(table).where(key.in_(select(victims.c[key.name]))).returning(key)

    def _claim_sql(self, *, by_conversation: bool, by_platform: bool) -> _Prepared:
        key = (by_conversation, by_platform)
        if key not in self._claims:
            filters = []
            if by_conversation:
                filters.append(m.conversation_id == bindparam("conversation_id"))
            if by_platform:
                filters.append(m.platform == bindparam("platform"))
            n = bindparam("n", type_=Integer)
            now = bindparam("now", type_=m.lease_expires_at.type)
            expired = self._locked(
                select(m.id)
                .where(state_is("in_progress"), m.lease_expires_at < now, *filters)
                .order_by(m.lease_expires_at)
                .limit(n)
            ).cte("commtel_expired")
            expired = expired.prefix_with("MATERIALIZED")
            pending = self._locked(select(m.id).where(state_is("pending"), *filters).order_by(m.id).limit(n)).cte(
                "commtel_pending"
            )
            pending = pending.prefix_with("MATERIALIZED")
            # Expired leases first; the LIMIT stops the append early, so the pending probe runs
            # (and locks rows) only when fewer than n leases expired.
            chosen = union_all(select(expired.c.id), select(pending.c.id)).limit(n).subquery("commtel_chosen")
            stmt = (
                update(messages_table)
                .where(
                    m.id == chosen.c.id,
                    or_(state_is("pending"), and_(state_is("in_progress"), m.lease_expires_at < now)),
                )
                .values(
                    state=_literal("in_progress"),
                    previous_state=m.state,  # SET reads the old row: tells a reclaim from a first claim
                    lease_owner=bindparam("worker"),
                    lease_expires_at=bindparam("expires"),
                    attempts=m.attempts + 1,
                    updated_at=now,
                    error=None,
                )
                .returning(*CLAIM_COLUMNS)
            )
            self._claims[key] = self._compile(stmt)
        return self._claims[key]

    # -- messages ---------------------------------------------------------------------------

    def insert_message(self, row: Mapping[str, Any]) -> Query:
        """Insert one message unless stored; rows: ``[(id,)]`` when it was new, else ``[]``."""
        return self._insert_message(row)

    def insert_messages(self, rows: Sequence[Mapping[str, Any]]) -> Query:
        """Insert messages, skipping stored ones; rows: ``(conversation_id, message_id)`` of the new ones."""
        stmt = self._insert(messages_table).values(list(rows)).on_conflict_do_nothing()
        return self._adhoc(stmt.returning(m.conversation_id, m.message_id))

    def get_message(self, conversation_id: str, message_id: str) -> Query:
        """The full row (:data:`MESSAGE_COLUMNS`) of one message, if stored."""
        return self._get_message({"conversation_id": conversation_id, "message_id": message_id})

    def messages_by_id(self, message_ids: Sequence[str]) -> Query:
        """Full rows of messages whose message id is one of *message_ids*."""
        return self._adhoc(select(*MESSAGE_COLUMNS).where(m.message_id.in_(list(message_ids))))

    def conversations_of(self, message_ids: Sequence[str]) -> Query:
        """``(message_id, conversation_id)`` of each stored message among *message_ids*."""
        return self._adhoc(select(m.message_id, m.conversation_id).where(m.message_id.in_(list(message_ids))))

    def list_messages(
        self, *, conversation_id: str | None = None, state: str | None = None, limit: int | None = None
    ) -> Query:
        """Full rows in insertion order, optionally of one conversation and/or one state."""
        stmt = select(*MESSAGE_COLUMNS).order_by(m.id)
        if conversation_id is not None:
            stmt = stmt.where(m.conversation_id == conversation_id)
        if state is not None:
            stmt = stmt.where(state_is(state))
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._adhoc(stmt)

    def count_messages(self) -> Query:
        """``(state, count)`` rows."""
        return self._count()

    def claim(
        self,
        worker_id: str,
        *,
        now: float,
        expires: float,
        limit: int,
        conversation_id: str | None,
        platform: str | None,
    ) -> Query:
        """Claim up to *limit* messages (expired leases first, then pending by id); rows: :data:`CLAIM_COLUMNS`."""
        params = {
            "worker": worker_id,
            "now": now,
            "expires": expires,
            "n": limit,
            "conversation_id": conversation_id,
            "platform": platform,
        }
        return self._claim_sql(by_conversation=conversation_id is not None, by_platform=platform is not None)(params)

    def finish(self, row_id: int, attempt: int, worker_id: str, *, state: str, now: float, error: str | None) -> Query:
        """Move a message held under this lease to *state*; row count 1 if the lease was still held."""
        params = {
            "row_id": row_id,
            "attempt": attempt,
            "worker": worker_id,
            "new_state": state,
            "now": now,
            "error": error,
        }
        return self._finish(params, rows=False)

    def renew(self, row_id: int, attempt: int, worker_id: str, *, expires: float, now: float) -> Query:
        """Extend a lease still held; row count 1 if it was."""
        params = {"row_id": row_id, "attempt": attempt, "worker": worker_id, "expires": expires, "now": now}
        return self._renew(params, rows=False)

    def set_state(self, row: Sequence[Any], values: Mapping[str, Any]) -> Query:
        """Compare-and-set on the state and attempts of a full *row*; rows: the new full row, if it matched."""
        params = {"row_id": row[0], "expected_state": row[6], "expected_attempts": row[8], **values}
        return self._set_state(params)

    def purge_messages(self, cutoff: float, batch: int) -> Query:
        """Delete up to *batch* completed or failed messages last changed before *cutoff*; rows: their ids."""
        return self._purge_messages({"cutoff": cutoff, "batch": batch})

    # -- progress ---------------------------------------------------------------------------

    def insert_progress(self, row: Mapping[str, Any]) -> Query:
        """Insert a progress row unless the task exists; row count."""
        return self._insert_progress(row, rows=False)

    def get_progress(self, task_id: str) -> Query:
        """The full row (:data:`PROGRESS_COLUMNS`) of one task, if stored."""
        return self._get_progress({"task_id": task_id})

    def update_progress(self, task_id: str, values: Mapping[str, Any]) -> Query:
        """Record step, percent, details, eta and now of a running task; row count."""
        return self._update_progress({"task_id": task_id, **values}, rows=False)

    def finish_progress(self, task_id: str, values: Mapping[str, Any]) -> Query:
        """Finish a running task (outcome, final_percent or None, eta, error, now); row count."""
        return self._finish_progress({"task_id": task_id, **values}, rows=False)

    def list_progress(self, user_key: str) -> Query:
        """Full rows of one user's tasks, oldest first."""
        return self._list_progress({"user_key": user_key})

    def purge_progress(self, cutoff: float, batch: int) -> Query:
        """Delete up to *batch* tasks finished before *cutoff*; rows: their task ids."""
        return self._purge_progress({"cutoff": cutoff, "batch": batch})


def _dialect(backend: str) -> Dialect:
    # Named parameters on both, so one parameter dict fits every driver.
    if backend == "postgresql":
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        return PGDialect_psycopg()  # type: ignore[no-untyped-call]
    from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

    return SQLiteDialect_pysqlite(paramstyle="named")


@cache
def sql_for(backend: str) -> TrackerSQL:
    """The compiled statements for ``sqlite`` or ``postgresql`` (built once per process)."""
    return TrackerSQL(backend)
