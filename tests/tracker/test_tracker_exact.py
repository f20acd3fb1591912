"""The conversation tracker to the field: exact messages, claims, events, errors and round trips.

Every stored field is compared whole (``TrackedMessage`` equality) on the fake clock, through
every way a message comes back: tracking, reading, claiming, renewing, finishing, manual changes.
A few tests drive the sans-I/O :class:`ConversationOps` directly and answer its queries themselves,
for what a real database cannot be made to do on demand (a compare-and-set that keeps losing, a row
deleted between two statements, a purge that fails during a claim).
"""

from __future__ import annotations

import logging

from collections.abc import Generator, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from commtel.backends._sql_queries import Query, sql_for
from commtel.errors import BackendError, ConfigurationError, StateTransitionError
from commtel.messages import RowsPurged
from commtel.messages._headers import MessageHeaders
from commtel.messages._retention import RETENTION_BATCH, Retention
from commtel.messages._tracker import (
    ConversationOps,
    ConversationTracker,
    ConversationTrackerCreated,
    MessageState,
    MessageStateChanged,
    ThreadEntry,
    TrackedMessage,
    UnknownMessageError,
    check_transition,
)
from commtel.testing import capture_events
from tests.harness.clock import FakeClock
from tests.tracker.drivers import conversation_tracker


T0 = 1_700_000_000.0
PENDING, IN_PROGRESS, COMPLETED, FAILED = MessageState


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def tracker(clock: FakeClock, driver: str) -> Iterator[ConversationTracker]:
    with conversation_tracker(driver, "sqlite://", lease_s=10.0, clock=clock) as tracker:
        yield tracker


def changes(events: list[Any]) -> list[tuple[Any, ...]]:
    """Every MessageStateChanged as a tuple of all its fields."""
    return [
        (e.conversation_id, e.message_id, e.platform, e.previous, e.state, e.worker_id)
        for e in events
        if isinstance(e, MessageStateChanged)
    ]


def test_building_a_tracker_is_one_event_that_exposes_its_purge_counter(
    clock: FakeClock, driver: str, registry: Any
) -> None:
    """A new tracker emits ConversationTrackerCreated once; its purge counter then reads 0."""
    with capture_events() as events:
        conversation_tracker(driver, "sqlite://", clock=clock).close()
    assert [e for e in events if isinstance(e, ConversationTrackerCreated)] == [ConversationTrackerCreated()]
    assert len(events) == 1
    assert registry.get_sample_value("commtel_tracker_rows_purged_total", {"table": "messages"}) == 0


# -- transitions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "new", "message"),
    [
        (COMPLETED, PENDING, "completed -> pending; completed may go to nothing (final state)"),
        (IN_PROGRESS, IN_PROGRESS, "in_progress -> in_progress; in_progress may go to completed, failed, pending"),
        (PENDING, FAILED, "pending -> failed; pending may go to in_progress"),
    ],
)
def test_an_illegal_transition_names_what_is_allowed(previous: MessageState, new: MessageState, message: str) -> None:
    """The error names the refused change and every state the message may go to (or that it is final)."""
    with pytest.raises(StateTransitionError) as raised:
        check_transition(previous, new)
    assert str(raised.value) == f"illegal message state change {message}"


# -- every field, through every path ------------------------------------------------------------


def test_a_claimed_renewed_and_failed_message_is_exact_everywhere(
    tracker: ConversationTracker, clock: FakeClock
) -> None:
    """Each step returns exactly what get_message, the thread view and tracking again then read back."""
    pending = tracker.track_message("conv", "m1", "m0", platform="email", subject="Hello")
    assert pending == TrackedMessage("conv", "m1", "m0", "email", PENDING, 0, None, None, "Hello", None, at(T0), at(T0))
    assert tracker.get_message("conv", "m1") == pending
    clock.now += 5
    claim = tracker.claim_next("w1", lease_s=7)
    assert claim is not None
    held = replace(
        pending, state=IN_PROGRESS, attempts=1, lease_owner="w1", lease_expires_at=at(T0 + 12), updated_at=at(T0 + 5)
    )
    assert (claim.message, claim.worker_id, claim.attempt, claim.lease_expires_at) == (held, "w1", 1, T0 + 12)
    assert (claim.conversation_id, claim.message_id) == ("conv", "m1")
    assert tracker.get_message("conv", "m1") == held
    assert tracker.get_thread("conv") == [ThreadEntry(0, held)]  # its parent m0 is not tracked
    assert tracker.track_message("conv", "m1") == held  # tracking again returns what is stored
    clock.now += 1
    renewed = tracker.renew(claim, lease_s=20)
    assert renewed.message == replace(held, lease_expires_at=at(T0 + 26), updated_at=at(T0 + 6))
    assert (renewed.worker_id, renewed.attempt, renewed.lease_expires_at) == ("w1", 1, T0 + 26)
    assert tracker.get_message("conv", "m1") == renewed.message
    clock.now += 1
    again = tracker.renew(renewed)  # a renewed claim renews (the tracker's default lease) and finishes
    assert again.message == replace(held, lease_expires_at=at(T0 + 17), updated_at=at(T0 + 7))
    assert again.lease_expires_at == T0 + 17
    clock.now += 1
    failed = tracker.fail(again, "smtp 451")
    assert failed == replace(held, state=FAILED, lease_expires_at=None, updated_at=at(T0 + 8), error="smtp 451")
    assert tracker.get_message("conv", "m1") == failed


def test_manual_changes_set_attempts_owner_lease_and_error_exactly(
    tracker: ConversationTracker, clock: FakeClock
) -> None:
    """set_message_state: in_progress takes an anonymous lease and counts an attempt; other states keep both."""
    tracker.track_message("c", "m", platform="sms")
    clock.now += 2
    manual = tracker.set_message_state("c", "m", IN_PROGRESS)
    assert (manual.attempts, manual.lease_owner, manual.lease_expires_at) == (1, None, at(T0 + 12))
    assert (manual.updated_at, manual.created_at) == (at(T0 + 2), at(T0))
    clock.now += 1
    failed = tracker.set_message_state("c", "m", FAILED, error="bounced")
    assert (failed.state, failed.attempts, failed.lease_expires_at, failed.error) == (FAILED, 1, None, "bounced")
    assert tracker.get_message("c", "m") == failed
    retried = tracker.retry("c", "m")
    assert (retried.state, retried.attempts, retried.error) == (PENDING, 1, None)
    claim = tracker.claim_next("w1")
    assert claim is not None
    assert claim.attempt == 2
    released = tracker.release(claim)
    assert (released.state, released.lease_owner) == (PENDING, "w1")  # the last owner stays on record
    again = tracker.set_message_state("c", "m", "in_progress")
    assert (again.attempts, again.lease_owner) == (3, None)  # a manual claim is anonymous
    tracker.set_message_state("c", "m", PENDING)
    claim = tracker.claim_next("w2")
    assert claim is not None
    clock.now += 1
    done = tracker.set_message_state("c", "m", COMPLETED)
    assert (done.attempts, done.lease_owner, done.lease_expires_at) == (4, "w2", None)
    assert done.updated_at == at(clock.now)


def test_every_state_change_is_one_exact_event(tracker: ConversationTracker) -> None:
    """Manual changes carry no worker; claims and finishes carry theirs; tracking again emits nothing."""
    with capture_events() as events:
        tracker.track_message("conv", "m", platform="sms")
        tracker.track_message("conv", "m", platform="sms")
        tracker.set_message_state("conv", "m", IN_PROGRESS)
        tracker.set_message_state("conv", "m", FAILED, error="x")
        tracker.retry("conv", "m")
        claim = tracker.claim_next("w9")
        assert claim is not None
        tracker.complete(claim)
    assert changes(events) == [
        ("conv", "m", "sms", None, "pending", None),
        ("conv", "m", "sms", "pending", "in_progress", None),
        ("conv", "m", "sms", "in_progress", "failed", None),
        ("conv", "m", "sms", "failed", "pending", None),
        ("conv", "m", "sms", "pending", "in_progress", "w9"),
        ("conv", "m", "sms", "in_progress", "completed", "w9"),
    ]


@pytest.mark.parametrize(("error", "stored"), [("boom", "boom"), (None, None), (ValueError("bad"), "ValueError: bad")])
def test_a_failure_is_stored_as_given(tracker: ConversationTracker, error: Any, stored: str | None) -> None:
    """A string is stored as is, no error as NULL, an exception as "ClassName: message"."""
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w")
    assert claim is not None
    assert tracker.fail(claim, error).error == stored
    assert tracker.get_message("c", "m").error == stored


def test_defaults_lease_30_s_and_platform_unknown(clock: FakeClock, driver: str) -> None:
    """Without settings a lease lasts 30 s and a message's platform is "unknown"."""
    with conversation_tracker(driver, "sqlite://", clock=clock) as tracker:
        assert tracker.lease_s == 30.0
        message = tracker.track_message("c", "m")
        assert (message.platform, message.in_reply_to, message.subject) == ("unknown", None, None)
        claim = tracker.claim_next("w")
        assert claim is not None
        assert claim.lease_expires_at == T0 + 30


# -- claims -------------------------------------------------------------------------------------


def test_a_batch_comes_back_oldest_message_first_across_conversations(
    tracker: ConversationTracker, clock: FakeClock
) -> None:
    """Claims are ordered by arrival, not by conversation; each carries its own row exactly."""
    first = tracker.track_message("zeta", "z1", "z0", platform="email", subject="S")
    clock.now += 1
    second = tracker.track_message("alpha", "a1", platform="sms")
    clock.now += 1
    claims = tracker.claim_batch("w", 5, lease_s=3)
    common = {"state": IN_PROGRESS, "attempts": 1, "lease_owner": "w", "lease_expires_at": at(T0 + 5)}
    assert [c.message for c in claims] == [
        replace(first, **common, updated_at=at(T0 + 2)),
        replace(second, **common, updated_at=at(T0 + 2)),
    ]
    assert [(c.worker_id, c.attempt, c.lease_expires_at) for c in claims] == [("w", 1, T0 + 5)] * 2


def test_a_lost_lease_says_whose_and_which_attempt(tracker: ConversationTracker, clock: FakeClock) -> None:
    """Finishing or renewing a lost lease raises, naming the worker, the message and the attempt."""
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w1", lease_s=1)
    assert claim is not None
    clock.now += 2
    assert tracker.claim_next("w2") is not None
    expected = (
        "lease of worker 'w1' on message 'm' (attempt 1) was lost: it expired and another worker claimed "
        "the message, or it was already finished"
    )
    for finish in (tracker.complete, tracker.renew):
        with pytest.raises(StateTransitionError) as raised:
            finish(claim)
        assert str(raised.value) == expected


# -- reading ------------------------------------------------------------------------------------


def ids(messages: list[TrackedMessage]) -> list[str]:
    return [m.message_id for m in messages]


def test_listing_filters_by_conversation_and_limits_exactly(tracker: ConversationTracker) -> None:
    """Pending lists in arrival order, of one conversation or all, cut at *limit*; counts every state."""
    assert tracker.counts() == {PENDING: 0, IN_PROGRESS: 0, COMPLETED: 0, FAILED: 0}
    for conversation, message in [("c1", "a"), ("c2", "x"), ("c1", "b"), ("c1", "c")]:
        tracker.track_message(conversation, message)
    assert ids(tracker.get_pending_messages()) == ["a", "x", "b", "c"]
    assert ids(tracker.get_pending_messages("c1")) == ["a", "b", "c"]
    assert ids(tracker.get_pending_messages("c1", limit=2)) == ["a", "b"]
    assert ids(tracker.get_pending_messages(limit=3)) == ["a", "x", "b"]
    assert tracker.get_pending_messages(limit=0) == []
    assert [e.message.message_id for e in tracker.get_thread("c2")] == ["x"]
    assert tracker.get_thread("nobody") == []
    assert tracker.get_message_state("c1", "nope") is None
    assert tracker.get_message_state("c2", "x") is PENDING
    tracker.set_message_state("c1", "b", IN_PROGRESS)
    assert tracker.counts() == {PENDING: 3, IN_PROGRESS: 1, COMPLETED: 0, FAILED: 0}


def test_thread_roots_are_messages_without_a_tracked_parent(tracker: ConversationTracker) -> None:
    """A reply to an untracked message, and a message naming itself as its parent, start branches at depth 0."""
    tracker.track_message("c", "orphan", "never-tracked")
    tracker.track_message("c", "root")
    tracker.track_message("c", "self", "self")
    tracker.track_message("c", "reply", "orphan")
    assert [(e.depth, e.message.message_id) for e in tracker.get_thread("c")] == [
        (0, "orphan"),
        (1, "reply"),
        (0, "root"),
        (0, "self"),
    ]  # every branch in arrival order of its first message, roots and orphans alike


def test_replies_in_a_cycle_are_listed_once_from_the_oldest(tracker: ConversationTracker) -> None:
    """Bad data where a and b reply to each other: no root reaches them, so they start from a; each once."""
    tracker.track_message("c", "root")
    tracker.track_message("c", "a", "b")
    tracker.track_message("c", "b", "a")
    tracker.track_message("c", "a2", "a")
    tracker.track_message("c", "b2", "b")
    assert [(e.depth, e.message.message_id) for e in tracker.get_thread("c")] == [
        (0, "root"),
        (0, "a"),
        (1, "b"),
        (2, "b2"),
        (1, "a2"),
    ]
    tracker.track_message("loop", "x", "y")
    tracker.track_message("loop", "y", "x")
    assert [(e.depth, e.message.message_id) for e in tracker.get_thread("loop")] == [(0, "x"), (1, "y")]


# -- configuration errors, to the word ----------------------------------------------------------


def test_configuration_errors_name_the_setting(tracker: ConversationTracker, driver: str) -> None:
    """lease_s, clock, limit and completed_before are named in their errors (the whole message, not a fragment)."""
    lease = "lease_s must be a finite duration in seconds (float or timedelta) > 0, got 0"
    with pytest.raises(ConfigurationError) as raised:
        conversation_tracker(driver, "sqlite://", lease_s=0)
    assert str(raised.value) == lease
    owner = "ConversationTracker" if driver == "sync" else "AsyncConversationTracker"
    with pytest.raises(ConfigurationError) as raised:
        conversation_tracker(driver, "sqlite://", clock=42)
    assert str(raised.value) == f"{owner}.clock must be a callable, got 42"
    tracker.track_message("c", "m")
    with pytest.raises(ConfigurationError) as raised:
        tracker.claim_next("w", lease_s=0)
    assert str(raised.value) == lease
    claim = tracker.claim_next("w")
    assert claim is not None
    with pytest.raises(ConfigurationError) as raised:
        tracker.renew(claim, lease_s=0)
    assert str(raised.value) == lease
    for bad_limit in (lambda: tracker.claim_batch("w", -1), lambda: tracker.get_pending_messages(limit=-1)):
        with pytest.raises(ConfigurationError) as raised:
            bad_limit()
        assert str(raised.value) == "limit must be a whole number >= 0, got -1"
    with pytest.raises(ConfigurationError) as raised:
        tracker.purge(completed_before=datetime(2024, 1, 1))
    assert str(raised.value).startswith("completed_before must be timezone-aware")
    with pytest.raises(UnknownMessageError) as missing:
        tracker.set_message_state("c", "nope", IN_PROGRESS)
    assert missing.value.args == ("message 'nope' is not tracked in conversation 'c'",)


# -- headers ------------------------------------------------------------------------------------


def test_track_headers_returns_stored_and_new_messages_in_order(tracker: ConversationTracker, clock: FakeClock) -> None:
    """Known messages come back as stored (wherever they are in the call), new ones as tracked; only new ones emit."""
    root = MessageHeaders.create("Plan", platform="email")
    a = root.reply()
    b = root.reply(platform="discord", native_id=7)
    [stored_root] = tracker.track_headers(root)
    clock.now += 1
    held = tracker.set_message_state(root.conversation_id, root.message_id, IN_PROGRESS)
    assert held != stored_root
    clock.now += 1
    with capture_events() as events:
        result = tracker.track_headers(root, a, b)
    conversation = root.message_id
    assert result == [
        held,
        TrackedMessage(
            conversation,
            a.message_id,
            root.message_id,
            "email",
            PENDING,
            0,
            None,
            None,
            a.subject,
            None,
            at(T0 + 2),
            at(T0 + 2),
        ),
        TrackedMessage(
            conversation,
            b.message_id,
            root.message_id,
            "discord",
            PENDING,
            0,
            None,
            None,
            b.subject,
            None,
            at(T0 + 2),
            at(T0 + 2),
        ),
    ]
    assert a.subject == "Re: Plan"
    assert changes(events) == [
        (conversation, a.message_id, "email", None, "pending", None),
        (conversation, b.message_id, "discord", None, "pending", None),
    ]
    assert tracker.track_headers(b, root, a) == [result[2], held, result[1]]  # all known: read back, no inserts
    assert tracker.get_thread(conversation) == [
        ThreadEntry(0, held),
        ThreadEntry(1, result[1]),
        ThreadEntry(1, result[2]),
    ]


def _recorded(op: Generator[Query, Any, Any], log: list[Query]) -> Generator[Query, Any, Any]:
    """Run *op* unchanged, noting every query it sends."""
    answer: Any = None
    while True:
        try:
            query = op.send(answer)
        except StopIteration as done:
            return done.value
        log.append(query)
        answer = yield query


@pytest.mark.parametrize(("n", "round_trips"), [(500, 2), (501, 4)])
def test_track_headers_sends_ids_and_rows_500_to_a_statement(clock: FakeClock, n: int, round_trips: int) -> None:
    """New messages: one id lookup and one insert per 500; known ones: one lookup and one read per 500."""
    heads = [MessageHeaders.create(f"s{i}", platform="email") for i in range(n)]
    with ConversationTracker("sqlite://", clock=clock) as tracker:
        log: list[Query] = []
        new = tracker.store.run(_recorded(tracker._ops.track_headers(heads), log))
        assert [m.message_id for m in new] == [h.message_id for h in heads]
        assert len(log) == round_trips
        log.clear()
        assert tracker.store.run(_recorded(tracker._ops.track_headers(heads), log)) == new
        assert len(log) == round_trips


# -- purging ------------------------------------------------------------------------------------


def test_purge_deletes_1000_rows_a_statement_by_default(tmp_path: Path, clock: FakeClock) -> None:
    """1,001 finished messages: the default batch deletes 1,000, then the last one."""
    from tests.tracker.test_retention import _load_completed

    url = f"sqlite:///{tmp_path / 'purge.db'}"
    with ConversationTracker(url, clock=clock) as tracker:
        _load_completed(url, 1001)
        with capture_events() as events:
            assert tracker.purge(completed_before=2.0) == 1001
    assert [e.rows for e in events if isinstance(e, RowsPurged)] == [1000, 1]


# -- the sans-I/O core, answered by the test ----------------------------------------------------


def _ops(clock: FakeClock, retention: Retention | None = None) -> ConversationOps:
    return ConversationOps(sql_for("sqlite"), lease_s=10.0, clock=clock, retention=retention or Retention(None))


def _row(state: str = "pending") -> tuple[Any, ...]:
    """A full stored row (MESSAGE_COLUMNS order)."""
    return (1, "c", "m", None, "email", None, state, None, 0, None, None, None, T0, T0)


def test_set_state_gives_up_after_eight_lost_races(clock: FakeClock) -> None:
    """A compare-and-set that loses every time is re-read and retried 8 times, then refused with a clear error."""
    op = _ops(clock).set_message_state("c", "m", IN_PROGRESS, None)
    reads = writes = 0
    query = next(op)
    with pytest.raises(StateTransitionError) as raised:
        while True:
            if query.sql.lstrip().upper().startswith("SELECT"):
                reads += 1
                query = op.send([_row()])
            else:
                writes += 1
                query = op.send([])  # another writer changed the row first
    assert (reads, writes) == (8, 8)
    assert str(raised.value) == "message 'm' kept changing under concurrent updates; try again"


def test_a_message_deleted_between_insert_and_read_is_reported(clock: FakeClock) -> None:
    """Tracking finds the message stored (insert skipped) but gone when read back: UnknownMessageError."""
    op = _ops(clock).track_message("c", "m", None, platform="email", subject=None)
    next(op)  # the insert
    op.send([])  # skipped: stored already
    with pytest.raises(UnknownMessageError) as raised:
        op.send([])  # the read finds nothing
    assert raised.value.args == ("message 'm' vanished from conversation 'c'",)


def _claim(ops: ConversationOps, *answers: Any) -> tuple[list[Query], Any]:
    """Run a claim of one message, answering its queries in turn; the queries and the claims."""
    op = ops.claim_batch("w", 1, lease_s=None, conversation_id=None, platform=None)
    queries = [next(op)]
    try:
        for answer in answers:
            queries.append(op.send(answer))
        queries.append(op.send([]))  # anything else: an empty answer
    except StopIteration as done:
        return queries, done.value
    raise AssertionError(f"the claim sent more queries: {queries}")


def test_retention_rides_on_claims_and_keeps_going_after_a_full_batch(clock: FakeClock) -> None:
    """A claim runs the due purge; after a full batch the next claim purges again at once, after less it waits."""
    ops = _ops(clock, Retention(3600))
    queries, claims = _claim(ops, [], [(i,) for i in range(RETENTION_BATCH)])
    assert claims == []
    assert len(queries) == 2  # the claim, the purge
    assert queries[1].params is not None
    assert (queries[1].params["cutoff"], queries[1].params["batch"]) == (T0 - 3600, RETENTION_BATCH)
    queries, _ = _claim(ops, [], [(1,)])  # same instant: a full batch left more behind
    assert len(queries) == 2
    queries, _ = _claim(ops, [])
    assert len(queries) == 1  # 1 row was not a full batch: the next purge is a minute away
    clock.now += 60
    queries, _ = _claim(ops, [], [])
    assert len(queries) == 2


def test_a_failing_purge_is_logged_and_the_claim_still_returns(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Housekeeping never fails the claim it rides on: the BackendError is logged as a warning."""
    ops = _ops(clock, Retention(3600))
    op = ops.claim_batch("w", 1, lease_s=None, conversation_id=None, platform=None)
    next(op)
    op.send([])  # nothing claimable; the purge is next
    with caplog.at_level(logging.WARNING, logger="commtel.tracker"), pytest.raises(StopIteration) as done:
        op.throw(BackendError("database is locked"))
    assert done.value.value == []
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "commtel.tracker"] == [
        (logging.WARNING, "automatic purge of finished messages failed: database is locked")
    ]
