"""Conversation tracking: message states with enforced transitions and leased work claims.

The state rules are a pure core (:data:`TRANSITIONS`, :func:`check_transition`,
and :class:`ConversationOps`, whose sans-I/O operations yield SQL queries and
receive their answers). :class:`ConversationTracker` runs them on a
:class:`~commtel.backends._sql_store.TrackerStore`, and
:class:`~commtel.messages.AsyncConversationTracker` on its asyncio twin, so both
behave the same. Every change is a compare-and-set, so many worker processes
can share one tracker::

    pending ──claim──▶ in_progress ──▶ completed
       ▲                  │  │
       └──── release ─────┘  └──▶ failed ──retry──▶ pending

A claim is a lease: a worker that dies stops renewing it, and once it expires
the message is claimable again. Completing with a lost lease raises, so each
message is completed exactly once. Every change is a :class:`MessageStateChanged`
event (``commtel_messages_total{platform,state}`` and a span event). Completed
and failed messages are purged by :meth:`ConversationTracker.purge`, or
automatically with ``retention_s``.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import _events
from .. import _validation as check
from .._events import Event
from .._exceptions import BackendError, CommtelError, ConfigurationError, StateTransitionError
from .._timing import wall
from ._headers import MessageHeaders
from ._owners import StoreOwner, coerce_store
from ._retention import RETENTION_BATCH, Retention, RowsPurged, batch_size, cutoff_of, positive_seconds


if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..backends._sql_queries import Op, TrackerSQL
    from ..backends._sql_store import TrackerStore


__all__ = [
    "TRANSITIONS",
    "Claim",
    "ConversationOps",
    "ConversationTracker",
    "ConversationTrackerCreated",
    "MessageState",
    "MessageStateChanged",
    "ThreadEntry",
    "TrackedMessage",
    "UnknownMessageError",
    "check_transition",
]

_CAS_ATTEMPTS = 8  # concurrent writers are rare on one message; this bounds a pathological race
_IN_CHUNK = 500  # ids per IN (...) list or rows per INSERT: far below every driver's parameter limit
_log = logging.getLogger("commtel.tracker")


class MessageState(str, Enum):
    """Where a message is in its processing.

    .. versionadded:: 0.1.0
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


#: Allowed transitions: from state -> states it may move to.
TRANSITIONS: Mapping[MessageState, frozenset[MessageState]] = {
    MessageState.PENDING: frozenset({MessageState.IN_PROGRESS}),
    MessageState.IN_PROGRESS: frozenset({MessageState.COMPLETED, MessageState.FAILED, MessageState.PENDING}),
    MessageState.FAILED: frozenset({MessageState.PENDING}),
    MessageState.COMPLETED: frozenset(),
}


def check_transition(previous: MessageState, new: MessageState) -> None:
    """Raise unless *previous* → *new* is an allowed transition.

    Raises:
        StateTransitionError: The transition is not in :data:`TRANSITIONS`.

    .. versionadded:: 0.1.0
    """
    if new not in TRANSITIONS[previous]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[previous])) or "nothing (final state)"
        msg = f"illegal message state change {previous.value} -> {new.value}; {previous.value} may go to {allowed}"
        raise StateTransitionError(msg)


class UnknownMessageError(CommtelError, KeyError):
    """The tracker has no such message in that conversation.

    .. versionadded:: 0.1.0
    """


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else _at(epoch)


@dataclass(frozen=True, slots=True)
class TrackedMessage:
    """A message as the tracker stores it.

    .. versionadded:: 0.1.0
    """

    conversation_id: str
    message_id: str
    in_reply_to: str | None
    platform: str
    state: MessageState
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    subject: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> TrackedMessage:
        """From a full row in :data:`~commtel.backends._sql_queries.MESSAGE_COLUMNS` order."""
        return cls(
            row[1],
            row[2],
            row[3],
            row[4],
            MessageState(row[6]),
            int(row[8]),
            row[9],
            _datetime(row[10]),
            row[5],
            row[11],
            _at(row[12]),
            _at(row[13]),
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's leased hold on one in-progress message; pass it to complete/fail/release.

    .. versionadded:: 0.1.0
    """

    message: TrackedMessage
    worker_id: str
    attempt: int
    lease_expires_at: float
    _row_id: int

    @property
    def conversation_id(self) -> str:
        """Conversation of the claimed message."""
        return self.message.conversation_id

    @property
    def message_id(self) -> str:
        """Universal id of the claimed message."""
        return self.message.message_id


@dataclass(frozen=True, slots=True)
class ConversationTrackerCreated(Event):
    """A conversation tracker (sync or async) was built; its purge counter is exposed at 0 from now on.

    .. versionadded:: 0.1.0
    """


class ThreadEntry(NamedTuple):
    """One message of a thread view with its reply depth (0 for a root).

    .. versionadded:: 0.1.0
    """

    depth: int
    message: TrackedMessage


@dataclass(frozen=True, slots=True)
class MessageStateChanged(Event):
    """A message entered *state* (``previous`` is ``None`` when it was first tracked).

    .. versionadded:: 0.1.0
    """

    conversation_id: str
    message_id: str
    platform: str
    previous: str | None
    state: str
    worker_id: str | None


def _whole(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be a whole number >= 0, got {value!r}"
        raise ConfigurationError(msg)
    return value


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    return (items[start : start + _IN_CHUNK] for start in range(0, len(items), _IN_CHUNK))


class ConversationOps:
    """The conversation tracker's behaviour as sans-I/O operations, shared by the sync and async trackers.

    Each method returns an :data:`~commtel.backends._sql_queries.Op`: it yields
    the queries to run and decides from their answers; it never touches a
    connection. Events are emitted here, so both trackers emit the same ones.

    Args:
        sql: The compiled statements of the store's database kind.
        lease_s: Default lease length in seconds, already validated by the tracker.
        clock: Wall clock in epoch seconds.
        retention: When automatic purges are due.
    """

    __slots__ = ("_clock", "_retention", "_sql", "lease_s")

    def __init__(self, sql: TrackerSQL, *, lease_s: float, clock: Callable[[], float], retention: Retention) -> None:
        self._sql = sql
        self.lease_s = lease_s
        self._clock = clock
        self._retention = retention
        if listeners := _events.active_listeners():
            _events.emit(ConversationTrackerCreated(), listeners)

    def lease_of(self, lease_s: float | timedelta | None) -> float:
        """The lease length for a call: *lease_s* if given (validated), else the default."""
        return self.lease_s if lease_s is None else positive_seconds("lease_s", lease_s)

    # -- tracking --------------------------------------------------------------------------

    def track_message(
        self, conversation_id: str, message_id: str, in_reply_to: str | None, *, platform: str, subject: str | None
    ) -> Op[TrackedMessage]:
        now = self._clock()
        row = _new_row(conversation_id, message_id, in_reply_to, platform=platform, subject=subject, now=now)
        if (yield self._sql.insert_message(row)):
            _emit_changed(conversation_id, message_id, platform, None, MessageState.PENDING)
            return _pending_message(row)
        return (yield from self._stored(conversation_id, message_id))

    def track_headers(self, headers: Sequence[MessageHeaders]) -> Op[list[TrackedMessage]]:
        chains = [[ref for ref in (*h.references, h.in_reply_to) if ref] for h in headers]
        wanted = list(dict.fromkeys([*(ref for chain in chains for ref in chain), *(h.message_id for h in headers)]))
        known: dict[str, str] = {}
        for chunk in _chunks(wanted):
            known.update((yield self._sql.conversations_of(chunk)))
        now = self._clock()
        rows: list[dict[str, Any]] = []
        keys: list[tuple[str, str]] = []
        for h, chain in zip(headers, chains, strict=True):
            if h.message_id in known:  # tracked already: keep where it is
                keys.append((known[h.message_id], h.message_id))
                continue
            conversation = next((known[ref] for ref in chain if ref in known), h.conversation_id)
            known[h.message_id] = conversation
            rows.append(
                _new_row(conversation, h.message_id, h.in_reply_to, platform=h.platform, subject=h.subject, now=now)
            )
            keys.append((conversation, h.message_id))
        new: set[tuple[str, str]] = set()
        for chunk in _chunks(rows):
            new.update((c, m) for c, m in (yield self._sql.insert_messages(chunk)))
        messages = {
            (row["conversation_id"], row["message_id"]): _pending_message(row)
            for row in rows
            if (row["conversation_id"], row["message_id"]) in new
        }
        if messages and (listeners := _events.active_listeners()):
            for m in messages.values():
                tracked = MessageStateChanged(
                    m.conversation_id, m.message_id, m.platform, None, MessageState.PENDING.value, None
                )
                _events.emit(tracked, listeners)
        # Messages stored before (or by a concurrent tracker, perhaps in another conversation): read them.
        stored: dict[str, TrackedMessage] = {}
        for chunk in _chunks(list(dict.fromkeys(key[1] for key in keys if key not in messages))):
            found = yield self._sql.messages_by_id(chunk)
            stored.update((row[2], TrackedMessage._from_row(row)) for row in found)
        return [messages[key] if key in messages else stored[key[1]] for key in keys]

    # -- reading ---------------------------------------------------------------------------

    def get_message(self, conversation_id: str, message_id: str) -> Op[TrackedMessage | None]:
        rows = yield self._sql.get_message(conversation_id, message_id)
        return TrackedMessage._from_row(rows[0]) if rows else None

    def list_messages(
        self, *, conversation_id: str | None = None, state: MessageState | None = None, limit: int | None = None
    ) -> Op[list[TrackedMessage]]:
        if limit is not None:
            _whole("limit", limit)
        query = self._sql.list_messages(
            conversation_id=conversation_id, state=None if state is None else state.value, limit=limit
        )
        return [TrackedMessage._from_row(row) for row in (yield query)]

    def get_thread(self, conversation_id: str) -> Op[list[ThreadEntry]]:
        messages = yield from self.list_messages(conversation_id=conversation_id)
        return _thread(messages)

    def counts(self) -> Op[dict[MessageState, int]]:
        found = {state: int(n) for state, n in (yield self._sql.count_messages())}
        return {state: found.get(state.value, 0) for state in MessageState}

    # -- state changes ---------------------------------------------------------------------

    def set_message_state(
        self, conversation_id: str, message_id: str, state: MessageState | str, error: str | None
    ) -> Op[TrackedMessage]:
        new = MessageState(state)
        for _ in range(_CAS_ATTEMPTS):
            rows = yield self._sql.get_message(conversation_id, message_id)
            if not rows:
                msg = f"message {message_id!r} is not tracked in conversation {conversation_id!r}"
                raise UnknownMessageError(msg)
            row = rows[0]
            previous = MessageState(row[6])
            check_transition(previous, new)
            now = self._clock()
            claimed = new is MessageState.IN_PROGRESS
            values = {
                "new_state": new.value,
                "new_attempts": row[8] + 1 if claimed else row[8],
                "owner": None if claimed else row[9],
                "expires": now + self.lease_s if claimed else None,
                "now": now,
                "error": error,
            }
            changed = yield self._sql.set_state(row, values)
            if changed:
                _emit_changed(conversation_id, message_id, row[4], previous, new)
                return TrackedMessage._from_row(changed[0])
        msg = f"message {message_id!r} kept changing under concurrent updates; try again"
        raise StateTransitionError(msg)

    # -- claims ----------------------------------------------------------------------------

    def claim_batch(
        self,
        worker_id: str,
        limit: int,
        *,
        lease_s: float | timedelta | None,
        conversation_id: str | None,
        platform: str | None,
    ) -> Op[list[Claim]]:
        if _whole("limit", limit) == 0:
            return []
        lease = self.lease_of(lease_s)
        now = self._clock()
        expires = now + lease
        rows = yield self._sql.claim(
            worker_id, now=now, expires=expires, limit=limit, conversation_id=conversation_id, platform=platform
        )
        rows.sort(key=lambda r: r[0])
        held_until = _at(expires)
        updated = _at(now)
        claims = [
            Claim(
                TrackedMessage(
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    MessageState.IN_PROGRESS,
                    int(row[6]),
                    worker_id,
                    held_until,
                    row[5],
                    None,
                    _at(row[7]),
                    updated,
                ),
                worker_id,
                int(row[6]),
                expires,
                row[0],
            )
            for row in rows
        ]
        if claims and (listeners := _events.active_listeners()):
            for claim, row in zip(claims, rows, strict=True):
                m = claim.message
                claimed = MessageStateChanged(
                    m.conversation_id, m.message_id, m.platform, row[8], MessageState.IN_PROGRESS.value, worker_id
                )
                _events.emit(claimed, listeners)
        yield from self._retain(now)
        return claims

    def renew(self, claim: Claim, lease_s: float | timedelta | None) -> Op[Claim]:
        lease = self.lease_of(lease_s)
        now = self._clock()
        expires = now + lease
        if (yield self._sql.renew(claim._row_id, claim.attempt, claim.worker_id, expires=expires, now=now)) != 1:
            raise _lease_lost(claim)
        message = dataclasses.replace(claim.message, lease_expires_at=_at(expires), updated_at=_at(now))
        return Claim(message, claim.worker_id, claim.attempt, expires, claim._row_id)

    def finish(self, claim: Claim, new: MessageState, error: str | None) -> Op[TrackedMessage]:
        now = self._clock()
        query = self._sql.finish(claim._row_id, claim.attempt, claim.worker_id, state=new.value, now=now, error=error)
        if (yield query) != 1:
            raise _lease_lost(claim)
        _emit_changed(
            claim.conversation_id,
            claim.message_id,
            claim.message.platform,
            MessageState.IN_PROGRESS,
            new,
            worker_id=claim.worker_id,
        )
        return dataclasses.replace(claim.message, state=new, lease_expires_at=None, updated_at=_at(now), error=error)

    # -- retention -------------------------------------------------------------------------

    def purge(self, completed_before: datetime | float, batch: int) -> Op[int]:
        cutoff = cutoff_of("completed_before", completed_before)
        batch = batch_size(batch)
        total = 0
        while True:
            purged = len((yield self._sql.purge_messages(cutoff, batch)))
            total += purged
            _emit_purged(purged)
            if purged < batch:
                return total

    def _retain(self, now: float) -> Op[None]:
        cutoff = self._retention.due(now)
        if cutoff is None:
            return
        try:
            purged = len((yield self._sql.purge_messages(cutoff, RETENTION_BATCH)))
        except BackendError as exc:  # housekeeping never fails the claim it rides on
            _log.warning("automatic purge of finished messages failed: %s", exc)
            return
        self._retention.ran(now, purged)
        _emit_purged(purged)

    def _stored(self, conversation_id: str, message_id: str) -> Op[TrackedMessage]:
        message = yield from self.get_message(conversation_id, message_id)
        if message is None:  # pragma: no cover - deleted behind our back
            msg = f"message {message_id!r} vanished from conversation {conversation_id!r}"
            raise UnknownMessageError(msg)
        return message


def _thread(messages: list[TrackedMessage]) -> list[ThreadEntry]:
    ids = {m.message_id for m in messages}
    children: dict[str | None, list[TrackedMessage]] = {}
    for m in messages:
        parent = m.in_reply_to if m.in_reply_to in ids and m.in_reply_to != m.message_id else None
        children.setdefault(parent, []).append(m)
    thread: list[ThreadEntry] = []
    placed: set[str] = set()
    # Roots first; then what no root reaches (replies in a cycle, bad data), from its oldest message.
    for root in [*children.get(None, ()), *messages]:
        stack = [(0, root)]
        while stack:
            depth, m = stack.pop()
            if m.message_id in placed:  # a placed root, or back round a reply cycle
                continue
            placed.add(m.message_id)
            thread.append(ThreadEntry(depth, m))
            stack.extend((depth + 1, c) for c in reversed(children.get(m.message_id, ())))
    return thread


class ConversationTracker(StoreOwner):
    """Track messages of conversations, their states, and leased claims by workers.

    Args:
        store: A :class:`~commtel.backends._sql_store.TrackerStore`, a database
            URL (``sqlite:///state.db``, ``postgresql+psycopg://...``), a state
            directory, or a SQLAlchemy engine.
        lease_s: Default lease length of a claim (seconds or ``timedelta``); renew longer work.
        clock: Wall clock in epoch seconds; leases compare these across
            processes and hosts, so keep host clocks in sync (NTP).
        retention_s: Keep completed and failed messages this long (seconds or
            ``timedelta``), then purge them automatically: claims run one batch of
            at most 1,000 rows a minute, and keep going while a backlog lasts.
            ``None`` (the default) keeps everything until :meth:`purge`.

    Raises:
        ConfigurationError: *lease_s* or *retention_s* is not a finite number of seconds > 0.
        BackendError: The database cannot be reached.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_ops", "_owns_store", "store")

    def __init__(
        self,
        store: TrackerStore | str | os.PathLike[str] | Engine,
        *,
        lease_s: float | timedelta = 30.0,
        clock: Callable[[], float] = wall,
        retention_s: float | timedelta | None = None,
    ) -> None:
        retention = Retention(retention_s)
        lease = positive_seconds("lease_s", lease_s)
        check.callable_(clock, "clock", owner="ConversationTracker")
        self.store, self._owns_store = coerce_store(store)
        self._ops = ConversationOps(self.store.sql, lease_s=lease, clock=clock, retention=retention)

    @property
    def lease_s(self) -> float:
        """Default lease length of a claim, in seconds."""
        return self._ops.lease_s

    def __repr__(self) -> str:
        return f"ConversationTracker({self.store!r}, lease_s={self.lease_s})"

    # -- tracking --------------------------------------------------------------------------

    def track_message(
        self,
        conversation_id: str,
        message_id: str,
        in_reply_to: str | None = None,
        *,
        platform: str = "unknown",
        subject: str | None = None,
    ) -> TrackedMessage:
        """Start tracking a message as pending; tracking it again returns the stored message.

        Returns:
            The stored message.

        .. versionadded:: 0.1.0
        """
        return self.store.run(
            self._ops.track_message(conversation_id, message_id, in_reply_to, platform=platform, subject=subject)
        )

    def track_headers(self, *headers: MessageHeaders) -> list[TrackedMessage]:
        """Track messages by their headers, threading each into its conversation.

        A message joins the conversation of any ancestor already tracked (or earlier
        in this call), so a thread stays one conversation even when a reply names
        only its parent; otherwise the root of its reply chain names the conversation.

        Returns:
            The stored messages, in the order given.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.track_headers(headers))

    # -- reading ---------------------------------------------------------------------------

    def get_message(self, conversation_id: str, message_id: str) -> TrackedMessage | None:
        """The tracked message, or ``None``.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.get_message(conversation_id, message_id))

    def get_message_state(self, conversation_id: str, message_id: str) -> MessageState | None:
        """The message's state, or ``None`` if it is not tracked.

        .. versionadded:: 0.1.0
        """
        message = self.get_message(conversation_id, message_id)
        return None if message is None else message.state

    def get_pending_messages(
        self, conversation_id: str | None = None, *, limit: int | None = None
    ) -> list[TrackedMessage]:
        """Pending messages, oldest first, of one conversation or of all.

        .. versionadded:: 0.1.0
        """
        return self.store.run(
            self._ops.list_messages(conversation_id=conversation_id, state=MessageState.PENDING, limit=limit)
        )

    def get_thread(self, conversation_id: str) -> list[ThreadEntry]:
        """The conversation as a thread: each message after its parent, replies in arrival order.

        Messages whose parent is not tracked start their own branch at depth 0; so do
        replies that form a cycle (bad data), from the oldest of them.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.get_thread(conversation_id))

    def counts(self) -> dict[MessageState, int]:
        """Number of messages in each state.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.counts())

    # -- state changes ---------------------------------------------------------------------

    def set_message_state(
        self, conversation_id: str, message_id: str, state: MessageState | str, *, error: str | None = None
    ) -> TrackedMessage:
        """Move a message to *state* if the transition is allowed (the manual form).

        Moving to in_progress this way takes an anonymous lease of ``lease_s``;
        workers should prefer :meth:`claim_next`, whose claims fence out a worker
        whose lease was taken over.

        Raises:
            StateTransitionError: The transition is not allowed.
            UnknownMessageError: The message is not tracked.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.set_message_state(conversation_id, message_id, state, error))

    def retry(self, conversation_id: str, message_id: str) -> TrackedMessage:
        """Send a failed message back to pending so a worker claims it again.

        Raises:
            StateTransitionError: The message is not failed.

        .. versionadded:: 0.1.0
        """
        return self.set_message_state(conversation_id, message_id, MessageState.PENDING)

    # -- claims ----------------------------------------------------------------------------

    def claim_next(
        self,
        worker_id: str,
        *,
        lease_s: float | timedelta | None = None,
        conversation_id: str | None = None,
        platform: str | None = None,
    ) -> Claim | None:
        """Atomically claim the oldest claimable message for *worker_id*, or ``None`` if there is none.

        Claimable means pending, or in progress under a lease that expired (its
        worker died); expired leases go first. No two workers, in any processes,
        get the same claim. One statement, one round trip.

        Args:
            worker_id: Who claims (host/process/thread name); recorded as lease owner.
            lease_s: Lease length; the tracker's ``lease_s`` when omitted.
            conversation_id: Only claim from this conversation.
            platform: Only claim messages of this platform.

        Raises:
            ConfigurationError: *lease_s* is not a finite number of seconds > 0.

        .. versionadded:: 0.1.0
        """
        claims = self.claim_batch(worker_id, 1, lease_s=lease_s, conversation_id=conversation_id, platform=platform)
        return claims[0] if claims else None

    def claim_batch(
        self,
        worker_id: str,
        limit: int,
        *,
        lease_s: float | timedelta | None = None,
        conversation_id: str | None = None,
        platform: str | None = None,
    ) -> list[Claim]:
        """Atomically claim up to *limit* messages in one statement (see :meth:`claim_next`).

        For high-throughput workers: one round trip claims the whole batch, each
        message under its own lease of the same length. Complete (or renew) them
        within the lease; any left unfinished when the worker dies are reclaimed
        after it.

        Returns:
            The claims, oldest message first; fewer than *limit* (or none) when
            fewer are claimable.

        Raises:
            ConfigurationError: *limit* is not a whole number >= 0, or *lease_s* is bad.

        .. versionadded:: 0.1.0
        """
        return self.store.run(
            self._ops.claim_batch(worker_id, limit, lease_s=lease_s, conversation_id=conversation_id, platform=platform)
        )

    def renew(self, claim: Claim, *, lease_s: float | timedelta | None = None) -> Claim:
        """Extend the lease of *claim* for long work; returns the renewed claim.

        Raises:
            StateTransitionError: The lease was lost (expired and taken over, or finished).

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.renew(claim, lease_s))

    def complete(self, claim: Claim) -> TrackedMessage:
        """Mark the claimed message completed.

        Raises:
            StateTransitionError: The lease was lost; another worker owns the message now.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.finish(claim, MessageState.COMPLETED, None))

    def fail(self, claim: Claim, error: str | BaseException | None = None) -> TrackedMessage:
        """Mark the claimed message failed (:meth:`retry` sends it back to pending).

        Args:
            claim: The worker's claim.
            error: What went wrong; an exception is stored as its class name and message.

        Raises:
            StateTransitionError: The lease was lost.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.finish(claim, MessageState.FAILED, error_text(error)))

    def release(self, claim: Claim) -> TrackedMessage:
        """Give the claimed message back (pending) without finishing it.

        Raises:
            StateTransitionError: The lease was lost.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.finish(claim, MessageState.PENDING, None))

    # -- retention -------------------------------------------------------------------------

    def purge(self, *, completed_before: datetime | float, batch: int = 1000) -> int:
        """Delete completed and failed messages last changed before *completed_before*.

        Runs in batches of *batch* rows, each its own short transaction, so
        workers keep claiming meanwhile. Pending and in-progress messages are
        never purged. Counted in ``commtel_tracker_rows_purged_total{table="messages"}``.

        Args:
            completed_before: A timezone-aware ``datetime`` or epoch seconds.
            batch: Rows deleted per statement.

        Returns:
            How many messages were deleted.

        Raises:
            ConfigurationError: *completed_before* is naive or not finite, or *batch* < 1.

        .. versionadded:: 0.1.0
        """
        return self.store.run(self._ops.purge(completed_before, batch))


def error_text(error: str | BaseException | None) -> str | None:
    """How a failure is stored: an exception as ``"ClassName: message"``."""
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error


def _new_row(
    conversation_id: str, message_id: str, in_reply_to: str | None, *, platform: str, subject: str | None, now: float
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "platform": platform,
        "subject": subject,
        "state": MessageState.PENDING.value,
        "previous_state": None,
        "attempts": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "error": None,
        "created_at": now,
        "updated_at": now,
    }


def _pending_message(row: Mapping[str, Any]) -> TrackedMessage:
    at = _at(row["created_at"])
    return TrackedMessage(
        row["conversation_id"],
        row["message_id"],
        row["in_reply_to"],
        row["platform"],
        MessageState.PENDING,
        0,
        None,
        None,
        row["subject"],
        None,
        at,
        at,
    )


def _lease_lost(claim: Claim) -> StateTransitionError:
    msg = (
        f"lease of worker {claim.worker_id!r} on message {claim.message_id!r} (attempt {claim.attempt}) "
        "was lost: it expired and another worker claimed the message, or it was already finished"
    )
    return StateTransitionError(msg)


def _emit_purged(rows: int, table: str = "messages") -> None:
    if rows and (listeners := _events.active_listeners()):
        _events.emit(RowsPurged(table, rows), listeners)


def _emit_changed(
    conversation_id: str,
    message_id: str,
    platform: str,
    previous: MessageState | None,
    new: MessageState,
    *,
    worker_id: str | None = None,
) -> None:
    if listeners := _events.active_listeners():
        old = None if previous is None else previous.value
        changed = MessageStateChanged(conversation_id, message_id, platform, old, new.value, worker_id)
        _events.emit(changed, listeners)
