"""Tables of the conversation tracker and the progress tracker (SQLAlchemy Core).

Claims probe partial indexes that hold only the rows a claim can take: pending
messages by id, in-progress messages by lease expiry. Completed and failed rows
live only in the primary key, the id indexes and a partial index by finish time
that retention purges walk, so claim cost does not grow with history. The
predicates compare ``state`` with SQL literals (:func:`state_is`), which both
PostgreSQL and SQLite match against the partial indexes' predicates.
"""

from __future__ import annotations

from .._optional import requires


with requires("sqlalchemy"):
    from sqlalchemy import (
        BigInteger,
        Column,
        ColumnElement,
        Double,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        UniqueConstraint,
        literal_column,
        or_,
    )


__all__ = ["FINISHED", "messages_table", "metadata", "progress_table", "state_is"]

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys

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
    Index("ix_commtel_messages_message_id", "message_id"),
)


def state_is(*states: str, table: Table = messages_table) -> ColumnElement[bool]:
    """``state = '<literal>'`` (OR-ed): a predicate partial indexes can be matched against."""
    state = table.c.state
    tests = [state == literal_column(f"'{s}'", String) for s in states]
    return tests[0] if len(tests) == 1 else or_(*tests)


#: Final message states: what retention purges.
FINISHED = ("completed", "failed")

_m = messages_table.c
for _name, _column, _where in (
    ("ix_commtel_messages_pending", _m.id, state_is("pending")),
    ("ix_commtel_messages_leases", _m.lease_expires_at, state_is("in_progress")),
    ("ix_commtel_messages_finished", _m.updated_at, state_is(*FINISHED)),
):
    Index(_name, _column, postgresql_where=_where, sqlite_where=_where)

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
    Index("ix_commtel_progress_finished_at", "finished_at"),
)
