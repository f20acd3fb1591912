"""Conversation tracking: message states with enforced transitions and leased work claims.

The state rules are a pure core (:data:`TRANSITIONS`, :func:`check_transition`);
:class:`ConversationTracker` is the driver that applies them to a SQL store
(:class:`~commtel.backends._sql_store.TrackerStore`) with compare-and-set
updates, so many worker processes can share one tracker::

    pending ──claim──▶ in_progress ──▶ completed
       ▲                  │  │
       └──── release ─────┘  └──▶ failed ──retry──▶ pending

A claim is a lease: a worker that dies stops renewing it, and once it expires
the message is claimable again. Completing with a lost lease raises, so each
message is completed exactly once. Every change is a :class:`MessageStateChanged`
event (``commtel_messages_total{platform,state}`` and a span event).
"""

from __future__ import annotations

import math
import os

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from typing_extensions import Self

from .. import _events
from .._events import Event
from .._exceptions import CommtelError, ConfigurationError, StateTransitionError
from .._timing import wall
from ._headers import MessageHeaders


if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..backends._sql_store import TrackerStore


__all__ = [
    "TRANSITIONS",
    "Claim",
    "ConversationTracker",
    "MessageState",
    "MessageStateChanged",
    "ThreadEntry",
    "TrackedMessage",
    "UnknownMessageError",
    "check_transition",
]

_CAS_ATTEMPTS = 8  # concurrent writers are rare on one message; this bounds a pathological race


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


def positive_seconds(name: str, value: float | timedelta) -> float:
    """*value* as float seconds; anything but a finite number > 0 (or such a ``timedelta``) is refused.

    Raises:
        ConfigurationError: *value* is not a number, NaN, infinite, zero or negative.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        msg = f"{name} must be a finite number of seconds > 0 (or a timedelta), got {value!r}"
        raise ConfigurationError(msg)
    return float(seconds)


class UnknownMessageError(CommtelError, KeyError):
    """The tracker has no such message in that conversation.

    .. versionadded:: 0.1.0
    """


def _datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


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
    def _from_row(cls, row: Mapping[str, Any]) -> TrackedMessage:
        return cls(
            row["conversation_id"],
            row["message_id"],
            row["in_reply_to"],
            row["platform"],
            MessageState(row["state"]),
            int(row["attempts"]),
            row["lease_owner"],
            _datetime(row["lease_expires_at"]),
            row["subject"],
            row["error"],
            datetime.fromtimestamp(row["created_at"], timezone.utc),
            datetime.fromtimestamp(row["updated_at"], timezone.utc),
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


def coerce_store(store: TrackerStore | str | os.PathLike[str] | Engine) -> tuple[TrackerStore, bool]:
    """The store to use for *store*, and whether the caller made it (and so closes it)."""
    from ..backends._sql_store import TrackerStore

    return (store, False) if isinstance(store, TrackerStore) else (TrackerStore(store), True)


class StoreOwner:
    """Closing for trackers: they release a store only if they opened it themselves."""

    __slots__ = ()
    store: TrackerStore
    _owns_store: bool

    def close(self) -> None:
        """Release the database connections of a store this tracker opened itself.

        .. versionadded:: 0.1.0
        """
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ConversationTracker(StoreOwner):
    """Track messages of conversations, their states, and leased claims by workers.

    Args:
        store: A :class:`~commtel.backends._sql_store.TrackerStore`, a database
            URL (``sqlite:///state.db``, ``postgresql+psycopg://...``), a state
            directory, or a SQLAlchemy engine.
        lease_s: Default lease length of a claim (seconds or ``timedelta``); renew longer work.
        clock: Wall clock in epoch seconds; leases compare these across
            processes and hosts, so keep host clocks in sync (NTP).

    Raises:
        ConfigurationError: *lease_s* is not a finite number of seconds > 0.
        BackendError: The database cannot be reached.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_clock", "_owns_store", "lease_s", "store")

    def __init__(
        self,
        store: TrackerStore | str | os.PathLike[str] | Engine,
        *,
        lease_s: float | timedelta = 30.0,
        clock: Callable[[], float] = wall,
    ) -> None:
        self.lease_s = positive_seconds("lease_s", lease_s)
        self._clock = clock
        self.store, self._owns_store = coerce_store(store)

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
        now = self._clock()
        row = _new_row(conversation_id, message_id, in_reply_to, platform=platform, subject=subject, now=now)
        if self.store.insert_messages([row]):
            _emit_changed(conversation_id, message_id, platform, None, MessageState.PENDING)
        return self._get(conversation_id, message_id)

    def track_headers(self, *headers: MessageHeaders) -> list[TrackedMessage]:
        """Track messages by their headers, threading each into its conversation.

        A message joins the conversation of any ancestor already tracked (or earlier
        in this call), so a thread stays one conversation even when a reply names
        only its parent; otherwise the root of its reply chain names the conversation.

        Returns:
            The stored messages, in the order given.

        .. versionadded:: 0.1.0
        """
        chains = [[ref for ref in (*h.references, h.in_reply_to) if ref] for h in headers]
        known = self.store.conversations_of(
            [*(ref for chain in chains for ref in chain), *(h.message_id for h in headers)]
        )
        now = self._clock()
        rows, keys = [], []
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
        self.store.insert_messages(rows)
        if rows and (listeners := _events.active_listeners()):
            for row in rows:
                _events.emit(
                    MessageStateChanged(
                        row["conversation_id"],
                        row["message_id"],
                        row["platform"],
                        None,
                        MessageState.PENDING.value,
                        None,
                    ),
                    listeners,
                )
        stored = {(r["conversation_id"], r["message_id"]): r for r in self.store.messages_by_id(m for _, m in keys)}
        return [TrackedMessage._from_row(stored[key]) for key in keys]

    # -- reading ---------------------------------------------------------------------------

    def get_message(self, conversation_id: str, message_id: str) -> TrackedMessage | None:
        """The tracked message, or ``None``.

        .. versionadded:: 0.1.0
        """
        row = self.store.get_message(conversation_id, message_id)
        return None if row is None else TrackedMessage._from_row(row)

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
        rows = self.store.list_messages(conversation_id=conversation_id, state=MessageState.PENDING.value, limit=limit)
        return [TrackedMessage._from_row(row) for row in rows]

    def get_thread(self, conversation_id: str) -> list[ThreadEntry]:
        """The conversation as a thread: each message after its parent, replies in arrival order.

        Messages whose parent is not tracked start their own branch at depth 0.

        .. versionadded:: 0.1.0
        """
        messages = [TrackedMessage._from_row(row) for row in self.store.list_messages(conversation_id=conversation_id)]
        ids = {m.message_id for m in messages}
        children: dict[str | None, list[TrackedMessage]] = {}
        for m in messages:
            parent = m.in_reply_to if m.in_reply_to in ids and m.in_reply_to != m.message_id else None
            children.setdefault(parent, []).append(m)
        thread: list[ThreadEntry] = []
        stack = [(0, m) for m in reversed(children.get(None, []))]
        seen: set[str] = set()
        while stack:
            depth, m = stack.pop()
            if m.message_id in seen:  # a reply cycle in bad data must not loop forever
                continue
            seen.add(m.message_id)
            thread.append(ThreadEntry(depth, m))
            stack.extend((depth + 1, c) for c in reversed(children.get(m.message_id, [])))
        return thread

    def counts(self) -> dict[MessageState, int]:
        """Number of messages in each state.

        .. versionadded:: 0.1.0
        """
        found = self.store.count_messages()
        return {state: found.get(state.value, 0) for state in MessageState}

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
        new = MessageState(state)
        for _ in range(_CAS_ATTEMPTS):
            row = self.store.get_message(conversation_id, message_id)
            if row is None:
                msg = f"message {message_id!r} is not tracked in conversation {conversation_id!r}"
                raise UnknownMessageError(msg)
            previous = MessageState(row["state"])
            check_transition(previous, new)
            now = self._clock()
            values: dict[str, Any] = {
                "state": new.value,
                "previous_state": previous.value,
                "updated_at": now,
                "error": error,
                "lease_expires_at": None,
            }
            if new is MessageState.IN_PROGRESS:
                values.update(lease_owner=None, lease_expires_at=now + self.lease_s, attempts=row["attempts"] + 1)
            expected = {"state": previous.value, "attempts": row["attempts"]}
            changed = self.store.compare_and_set(row["id"], expected, values)
            if changed is not None:
                _emit_changed(conversation_id, message_id, row["platform"], previous, new)
                return TrackedMessage._from_row(changed)
        msg = f"message {message_id!r} kept changing under concurrent updates; try again"
        raise StateTransitionError(msg)

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
        worker died). No two workers, in any processes, get the same claim.

        Args:
            worker_id: Who claims (host/process/thread name); recorded as lease owner.
            lease_s: Lease length; the tracker's ``lease_s`` when omitted.
            conversation_id: Only claim from this conversation.
            platform: Only claim messages of this platform.

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

        .. versionadded:: 0.1.0
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            msg = f"limit must be a whole number >= 0, got {limit!r}"
            raise ConfigurationError(msg)
        if limit == 0:
            return []
        now = self._clock()
        expires = now + self._lease_of(lease_s)
        rows = self.store.claim(
            worker_id,
            now=now,
            lease_expires_at=expires,
            limit=limit,
            conversation_id=conversation_id,
            platform=platform,
        )
        claims = [
            Claim(TrackedMessage._from_row(row), worker_id, int(row["attempts"]), expires, row["id"]) for row in rows
        ]
        if claims and (listeners := _events.active_listeners()):
            for claim, row in zip(claims, rows, strict=True):
                _events.emit(
                    MessageStateChanged(
                        claim.conversation_id,
                        claim.message_id,
                        claim.message.platform,
                        row["previous_state"],
                        MessageState.IN_PROGRESS.value,
                        worker_id,
                    ),
                    listeners,
                )
        return claims

    def renew(self, claim: Claim, *, lease_s: float | timedelta | None = None) -> Claim:
        """Extend the lease of *claim* for long work; returns the renewed claim.

        Raises:
            StateTransitionError: The lease was lost (expired and taken over, or finished).

        .. versionadded:: 0.1.0
        """
        now = self._clock()
        expires = now + self._lease_of(lease_s)
        if not self.store.renew(claim._row_id, claim.attempt, claim.worker_id, expires, now):
            raise _lease_lost(claim)
        return Claim(claim.message, claim.worker_id, claim.attempt, expires, claim._row_id)

    def complete(self, claim: Claim) -> TrackedMessage:
        """Mark the claimed message completed.

        Raises:
            StateTransitionError: The lease was lost; another worker owns the message now.

        .. versionadded:: 0.1.0
        """
        return self._finish(claim, MessageState.COMPLETED, None)

    def fail(self, claim: Claim, error: str | BaseException | None = None) -> TrackedMessage:
        """Mark the claimed message failed (:meth:`retry` sends it back to pending).

        Args:
            claim: The worker's claim.
            error: What went wrong; an exception is stored as its class name and message.

        Raises:
            StateTransitionError: The lease was lost.

        .. versionadded:: 0.1.0
        """
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        return self._finish(claim, MessageState.FAILED, text)

    def release(self, claim: Claim) -> TrackedMessage:
        """Give the claimed message back (pending) without finishing it.

        Raises:
            StateTransitionError: The lease was lost.

        .. versionadded:: 0.1.0
        """
        return self._finish(claim, MessageState.PENDING, None)

    def _finish(self, claim: Claim, new: MessageState, error: str | None) -> TrackedMessage:
        expected = {"state": MessageState.IN_PROGRESS.value, "attempts": claim.attempt, "lease_owner": claim.worker_id}
        values = {
            "state": new.value,
            "previous_state": MessageState.IN_PROGRESS.value,
            "lease_expires_at": None,
            "updated_at": self._clock(),
            "error": error,
        }
        changed = self.store.compare_and_set(claim._row_id, expected, values)
        if changed is None:
            raise _lease_lost(claim)
        _emit_changed(
            claim.conversation_id,
            claim.message_id,
            claim.message.platform,
            MessageState.IN_PROGRESS,
            new,
            worker_id=claim.worker_id,
        )
        return TrackedMessage._from_row(changed)

    def _lease_of(self, lease_s: float | timedelta | None) -> float:
        return self.lease_s if lease_s is None else positive_seconds("lease_s", lease_s)

    def _get(self, conversation_id: str, message_id: str) -> TrackedMessage:
        message = self.get_message(conversation_id, message_id)
        if message is None:  # pragma: no cover - deleted behind our back
            msg = f"message {message_id!r} vanished from conversation {conversation_id!r}"
            raise UnknownMessageError(msg)
        return message


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


def _lease_lost(claim: Claim) -> StateTransitionError:
    msg = (
        f"lease of worker {claim.worker_id!r} on message {claim.message_id!r} (attempt {claim.attempt}) "
        "was lost: it expired and another worker claimed the message, or it was already finished"
    )
    return StateTransitionError(msg)


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
        _events.emit(
            MessageStateChanged(
                conversation_id,
                message_id,
                platform,
                None if previous is None else previous.value,
                new.value,
                worker_id,
            ),
            listeners,
        )
