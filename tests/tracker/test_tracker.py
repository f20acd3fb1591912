"""Conversation tracker behaviour: transitions, claims and leases, threads, telemetry.

Tests taking the ``driver`` fixture run against ConversationTracker and AsyncConversationTracker
(driven through tests/tracker/drivers.py), so both show the same behaviour.
"""

from __future__ import annotations

import asyncio
import math
import threading

from collections.abc import Iterator
from datetime import timedelta

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import commtel
import commtel.events

from commtel.backends._sql import make_engine
from commtel.errors import ConfigurationError, StateTransitionError
from commtel.messages._headers import MessageHeaders
from commtel.messages._tracker import (
    TRANSITIONS,
    ConversationTracker,
    MessageState,
    MessageStateChanged,
    UnknownMessageError,
    check_transition,
)
from commtel.telemetry import start_span
from commtel.testing import capture_events
from tests.harness.clock import FakeClock
from tests.tracker.drivers import DRIVERS, conversation_tracker


@pytest.fixture
def clock() -> FakeClock:
    """A wall-like fake clock passed to the tracker as ``clock=`` (not installed over ``commtel._timing``)."""
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def tracker(clock: FakeClock, driver: str) -> Iterator[ConversationTracker]:
    with conversation_tracker(driver, "sqlite://", lease_s=10.0, clock=clock) as tracker:
        yield tracker


def test_seed_flow_pending_in_progress_completed(tracker: ConversationTracker) -> None:
    """The manual flow: track, set in_progress, set completed; pending listing follows."""
    tracker.track_message(conversation_id="conv-123", message_id="msg-456", in_reply_to="msg-455")
    assert [m.message_id for m in tracker.get_pending_messages("conv-123")] == ["msg-456"]
    tracker.set_message_state("conv-123", "msg-456", MessageState.IN_PROGRESS)
    assert tracker.get_pending_messages("conv-123") == []
    done = tracker.set_message_state("conv-123", "msg-456", MessageState.COMPLETED)
    assert done.state is MessageState.COMPLETED
    assert tracker.get_message_state("conv-123", "msg-456") is MessageState.COMPLETED


@pytest.mark.parametrize(
    ("previous", "new"),
    [(p, n) for p in MessageState for n in MessageState if n not in TRANSITIONS[p]],
)
def test_illegal_transitions_raise(tracker: ConversationTracker, previous: MessageState, new: MessageState) -> None:
    """Every transition outside the table raises StateTransitionError and leaves the state alone."""
    tracker.track_message("c", "m")
    path = {
        MessageState.PENDING: [],
        MessageState.IN_PROGRESS: [MessageState.IN_PROGRESS],
        MessageState.COMPLETED: [MessageState.IN_PROGRESS, MessageState.COMPLETED],
        MessageState.FAILED: [MessageState.IN_PROGRESS, MessageState.FAILED],
    }[previous]
    for state in path:
        tracker.set_message_state("c", "m", state)
    with pytest.raises(StateTransitionError, match=f"{previous.value} -> {new.value}"):
        tracker.set_message_state("c", "m", new)
    assert tracker.get_message_state("c", "m") is previous


def test_failed_message_is_retried_back_to_pending(tracker: ConversationTracker) -> None:
    """fail → retry puts the message back in the pending list with its error cleared."""
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w1")
    assert claim is not None
    failed = tracker.fail(claim, RuntimeError("smtp down"))
    assert failed.state is MessageState.FAILED
    assert failed.error == "RuntimeError: smtp down"
    retried = tracker.retry("c", "m")
    assert retried.state is MessageState.PENDING
    assert retried.error is None
    again = tracker.claim_next("w2")
    assert again is not None
    assert again.attempt == 2


def test_unknown_message_raises_lookup_error(tracker: ConversationTracker) -> None:
    """Changing the state of an untracked message raises UnknownMessageError (a KeyError)."""
    with pytest.raises(UnknownMessageError):
        tracker.set_message_state("c", "nope", MessageState.IN_PROGRESS)
    assert tracker.get_message("c", "nope") is None


def test_tracking_twice_keeps_the_first(tracker: ConversationTracker) -> None:
    """Tracking the same message again returns the stored one without resetting its state."""
    tracker.track_message("c", "m")
    tracker.set_message_state("c", "m", MessageState.IN_PROGRESS)
    assert tracker.track_message("c", "m").state is MessageState.IN_PROGRESS


def test_claim_next_takes_exactly_one_oldest_message(tracker: ConversationTracker) -> None:
    """claim_next claims one message, oldest first; the others stay pending."""
    for i in range(5):
        tracker.track_message("c", f"m{i}")
    claim = tracker.claim_next("w1")
    assert claim is not None
    assert claim.message_id == "m0"
    assert claim.message.state is MessageState.IN_PROGRESS
    assert tracker.counts()[MessageState.PENDING] == 4
    batch = tracker.claim_batch("w2", 3)
    assert [c.message_id for c in batch] == ["m1", "m2", "m3"]
    assert tracker.counts()[MessageState.PENDING] == 1


def test_claim_filters_by_conversation_and_platform(tracker: ConversationTracker) -> None:
    """Claims can be limited to one conversation or one platform."""
    tracker.track_message("a", "a1", platform="email")
    tracker.track_message("b", "b1", platform="discord")
    claim = tracker.claim_next("w", platform="discord")
    assert claim is not None
    assert claim.message_id == "b1"
    assert tracker.claim_next("w", conversation_id="b") is None
    claim = tracker.claim_next("w", conversation_id="a")
    assert claim is not None
    assert claim.message_id == "a1"


def test_expired_lease_is_reclaimed_and_old_holder_is_fenced_out(
    tracker: ConversationTracker, clock: FakeClock
) -> None:
    """After the lease expires another worker claims the message; the first can no longer complete it."""
    tracker.track_message("c", "m")
    first = tracker.claim_next("w1", lease_s=5)
    assert first is not None
    clock.now += 4.9
    assert tracker.claim_next("w2") is None
    clock.now += 0.2
    second = tracker.claim_next("w2")
    assert second is not None
    assert second.message_id == "m"
    assert second.attempt == 2
    with pytest.raises(StateTransitionError, match="lease"):
        tracker.complete(first)
    assert tracker.complete(second).lease_owner == "w2"


def test_renew_extends_a_lease_and_fails_once_lost(tracker: ConversationTracker, clock: FakeClock) -> None:
    """renew pushes the expiry out; renewing a lost lease raises."""
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w1", lease_s=5)
    assert claim is not None
    clock.now += 4
    claim = tracker.renew(claim, lease_s=5)
    clock.now += 4
    assert tracker.claim_next("w2") is None
    clock.now += 2
    assert tracker.claim_next("w2") is not None
    with pytest.raises(StateTransitionError):
        tracker.renew(claim)


def test_release_gives_the_message_back(tracker: ConversationTracker) -> None:
    """release returns a claimed message to pending for someone else."""
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w1")
    assert claim is not None
    assert tracker.release(claim).state is MessageState.PENDING
    assert tracker.claim_next("w2") is not None


def test_thread_view_orders_replies_under_parents(tracker: ConversationTracker) -> None:
    """get_thread lists each message after its parent with its depth, replies in arrival order."""
    root = MessageHeaders.create("Plan", platform="email")
    a = root.reply()
    b = root.reply(platform="twitter", native_id=42)
    a1 = a.reply(platform="discord", native_id=7)
    tracker.track_headers(root, a, b, a1)
    thread = tracker.get_thread(root.message_id)
    assert [(e.depth, e.message.message_id) for e in thread] == [
        (0, root.message_id),
        (1, a.message_id),
        (2, a1.message_id),
        (1, b.message_id),
    ]
    assert {e.message.platform for e in thread} == {"email", "twitter", "discord"}


def test_reply_naming_only_its_parent_joins_the_parents_conversation(tracker: ConversationTracker) -> None:
    """A reply without References joins the conversation of its already-tracked parent."""
    root = MessageHeaders.create("Hi")
    child = root.reply()
    tracker.track_headers(root, child)
    orphan_style = MessageHeaders.create(
        "Re: Hi", in_reply_to=child.message_id, platform="mastodon", native_id="9@mastodon.social"
    )
    assert orphan_style.conversation_id == child.message_id  # headers alone cannot know the root
    [stored] = tracker.track_headers(orphan_style)
    assert stored.conversation_id == root.message_id
    assert [e.depth for e in tracker.get_thread(root.message_id)] == [0, 1, 2]


def test_state_changes_emit_events_counted_by_platform_and_state(tracker: ConversationTracker, registry) -> None:
    """Each state change is an event; telemetry counts commtel_messages_total{platform,state}."""
    with capture_events() as events:
        tracker.track_message("c", "m", platform="discord")
        claim = tracker.claim_next("w1")
        assert claim is not None
        tracker.complete(claim)
    changes = [e for e in events if isinstance(e, MessageStateChanged)]
    assert [(e.previous, e.state) for e in changes] == [
        (None, "pending"),
        ("pending", "in_progress"),
        ("in_progress", "completed"),
    ]
    for state in ("pending", "in_progress", "completed"):
        assert registry.get_sample_value("commtel_messages_total", {"platform": "discord", "state": state}) == 1


def test_state_change_is_a_span_event_without_ids_in_metric_labels(
    tracker: ConversationTracker, spans, registry
) -> None:
    """The message id goes on the span event, never into a metric label."""
    tracker.track_message("c", "m-secret-id", platform="email")
    with start_span("work"):
        claim = tracker.claim_next("w1")
        assert claim is not None
        tracker.complete(claim)
    [span] = [s for s in spans.get_finished_spans() if s.name == "work"]
    events = [e for e in span.events if e.name == "commtel.message.state_changed"]
    assert [e.attributes["commtel.message.state"] for e in events] == ["in_progress", "completed"]
    assert events[0].attributes["commtel.message.id"] == "m-secret-id"
    exposition = "\n".join(f"{s.name}{s.labels}" for metric in registry.collect() for s in metric.samples)
    assert "m-secret-id" not in exposition
    assert "w1" not in exposition


def test_events_are_not_built_without_listeners(tracker: ConversationTracker) -> None:
    """With listeners off the tracker still works (events are skipped)."""
    commtel.events.set_listeners([])
    tracker.track_message("c", "m")
    claim = tracker.claim_next("w")
    assert claim is not None
    assert tracker.complete(claim).state is MessageState.COMPLETED


@pytest.mark.parametrize("driver", DRIVERS)
@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["claim", "complete", "fail", "release", "retry", "tick"]), st.integers(0, 2)),
        max_size=40,
    )
)
def test_transitions_stay_legal_for_any_operation_sequence(driver: str, ops: list[tuple[str, int]]) -> None:
    """Whatever workers do, stored states only move along TRANSITIONS and each message completes at most once."""
    clock = FakeClock(start=1_700_000_000.0)
    tracker = conversation_tracker(driver, "sqlite://", lease_s=3.0, clock=clock)
    commtel.events.set_listeners([])
    for i in range(3):
        tracker.track_message("c", f"m{i}")
    claims: dict[int, object] = {}
    completions: dict[str, int] = {}
    history = {f"m{i}": [MessageState.PENDING] for i in range(3)}
    for op, n in ops:
        try:
            if op == "claim":
                claim = tracker.claim_next(f"w{n}")
                if claim is not None:
                    claims[n] = claim
            elif op == "tick":
                clock.now += 1.5
            elif op == "retry":
                tracker.retry("c", f"m{n}")
            elif n in claims:
                claim = claims.pop(n)
                result = getattr(tracker, op)(claim)
                if op == "complete":
                    completions[result.message_id] = completions.get(result.message_id, 0) + 1
        except StateTransitionError:
            pass
        for entry in tracker.get_thread("c"):  # one op changes at most one state, by one step
            states = history[entry.message.message_id]
            new = entry.message.state
            if new is not states[-1]:
                check_transition(states[-1], new)
                states.append(new)
    assert all(count == 1 for count in completions.values())
    tracker.close()


def test_trackers_close_only_the_store_they_opened(tmp_path) -> None:
    """A tracker made from a URL closes its store on exit; one given a shared store leaves it open."""
    from commtel import ConversationTracker, ProgressTracker

    with ConversationTracker(f"sqlite:///{tmp_path / 'a.db'}") as tracker:
        tracker.track_message("c", "m")
        with ProgressTracker(tracker.store) as progress:
            progress.create_progress_session("t", user_id=1)
        assert tracker.get_pending_messages("c")  # still usable: the shared store stayed open


@pytest.mark.parametrize("run", range(3))
def test_eight_threads_on_in_memory_sqlite_claim_each_message_exactly_once(run: int) -> None:
    """`sqlite://` is one connection shared by threads: 8 threads claim and complete 120 messages exactly once."""
    commtel.events.set_listeners([])
    tracker = ConversationTracker("sqlite://")
    for i in range(120):
        tracker.track_message("c", f"m{i}")
    start = threading.Barrier(8)
    completed: list[str] = []
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        start.wait()
        try:
            while (claim := tracker.claim_next(worker)) is not None:
                completed.append(tracker.complete(claim).message_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(completed) == sorted(f"m{i}" for i in range(120))
    assert tracker.counts()[MessageState.COMPLETED] == 120
    assert {e.message.attempts for e in tracker.get_thread("c")} == {1}


@pytest.mark.anyio
@pytest.mark.parametrize("run", range(3))
async def test_eight_tasks_on_in_memory_sqlite_claim_each_message_exactly_once(run: int) -> None:
    """The async tracker on `sqlite://`: 8 tasks on one loop claim and complete 120 messages exactly once."""
    from commtel.messages import AsyncConversationTracker

    commtel.events.set_listeners([])
    async with AsyncConversationTracker("sqlite://") as tracker:
        for i in range(120):
            await tracker.track_message("c", f"m{i}")
        completed: list[str] = []

        async def work(worker: str) -> None:
            while (claim := await tracker.claim_next(worker)) is not None:
                completed.append((await tracker.complete(claim)).message_id)

        await asyncio.gather(*(work(f"w{i}") for i in range(8)))
        assert sorted(completed) == sorted(f"m{i}" for i in range(120))
        assert (await tracker.counts())[MessageState.COMPLETED] == 120


BAD_SECONDS = [0, -1, -0.5, math.nan, math.inf, -math.inf, True, "30", timedelta(0), timedelta(seconds=-1)]


@pytest.mark.parametrize("bad", BAD_SECONDS)
def test_lease_that_is_not_a_finite_positive_duration_is_refused(bad: object, clock: FakeClock, driver: str) -> None:
    """lease_s of 0 (two workers would hold one message), negative, NaN or inf: ConfigurationError, also per call."""
    with pytest.raises(ConfigurationError, match="lease_s"):
        conversation_tracker(driver, "sqlite://", lease_s=bad)
    tracker = conversation_tracker(driver, "sqlite://", lease_s=timedelta(seconds=5), clock=clock)
    assert tracker.lease_s == 5.0
    tracker.track_message("c", "m")
    with pytest.raises(ConfigurationError, match="lease_s"):
        tracker.claim_next("w", lease_s=bad)  # type: ignore[arg-type]
    claim = tracker.claim_next("w")
    assert claim is not None
    with pytest.raises(ConfigurationError, match="lease_s"):
        tracker.renew(claim, lease_s=bad)  # type: ignore[arg-type]
    assert tracker.complete(claim).state is MessageState.COMPLETED


@pytest.mark.parametrize("bad", [-1, 1.5, math.nan, True, "2"])
def test_claim_batch_limit_must_be_a_whole_number(tracker: ConversationTracker, bad: object) -> None:
    """claim_batch(limit=) takes a whole number >= 0 (0 claims nothing)."""
    tracker.track_message("c", "m")
    with pytest.raises(ConfigurationError, match="limit"):
        tracker.claim_batch("w", bad)  # type: ignore[arg-type]
    assert tracker.claim_batch("w", 0) == []


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True])
def test_sqlite_busy_timeout_must_be_finite(bad: object) -> None:
    """make_engine refuses a busy timeout that is negative, NaN or infinite before connecting."""
    with pytest.raises(ConfigurationError, match="busy_timeout_s"):
        make_engine("sqlite://", busy_timeout_s=bad)  # type: ignore[arg-type]


def test_an_in_memory_engine_shares_one_serialized_connection_or_is_refused() -> None:
    """A user's `sqlite://` engine on StaticPool is serialized like the URL form; on another pool it is refused."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    commtel.events.set_listeners([])
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    tracker = ConversationTracker(engine)
    for i in range(40):
        tracker.track_message("c", f"m{i}")
    claimed: list[str] = []

    def work(worker: str) -> None:
        while (claim := tracker.claim_next(worker)) is not None:
            claimed.append(tracker.complete(claim).message_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"m{i}" for i in range(40))
    with pytest.raises(ConfigurationError, match="StaticPool"):
        ConversationTracker(create_engine("sqlite://"))
