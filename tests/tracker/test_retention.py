"""Purge and retention of finished messages and tasks; claim cost independent of completed history."""

from __future__ import annotations

import json
import math
import sqlite3

from datetime import datetime, timedelta, timezone

import pytest

from sqlalchemy import text

from commtel.backends._sql import make_engine
from commtel.backends._sql_schema import metadata
from commtel.backends._sql_store import TrackerStore
from commtel.errors import ConfigurationError
from commtel.messages import MessageState, RowsPurged
from commtel.messages._retention import RETENTION_BATCH, Retention
from commtel.progress import ProgressState
from commtel.testing import capture_events
from tests.harness.clock import FakeClock
from tests.tracker.conftest import stored_rows
from tests.tracker.drivers import conversation_tracker, progress_tracker


DAY = 86_400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


def _finish_some(tracker, clock: FakeClock) -> None:
    """10 messages: 4 completed and 2 failed a day ago, 2 in progress and 2 pending now."""
    for i in range(10):
        tracker.track_message("c", f"m{i}")
    for i, claim in enumerate(tracker.claim_batch("w", 6)):
        tracker.complete(claim) if i < 4 else tracker.fail(claim, "boom")
    clock.now += DAY
    tracker.claim_batch("w", 2)


def test_purge_deletes_only_finished_messages_before_the_cutoff(
    db_url: str, driver: str, clock: FakeClock, registry
) -> None:
    """purge() removes completed and failed messages older than the cut-off, in batches, and counts them."""
    tracker = conversation_tracker(driver, db_url, clock=clock, lease_s=DAY * 10)
    _finish_some(tracker, clock)
    claim = tracker.claim_next("w")  # finished now: newer than the cut-off
    assert claim is not None
    tracker.complete(claim)
    cutoff = datetime.fromtimestamp(clock.now - 60, timezone.utc)
    with capture_events() as events:
        assert tracker.purge(completed_before=cutoff, batch=4) == 6
    assert [e.rows for e in events if isinstance(e, RowsPurged)] == [4, 2]
    assert registry.get_sample_value("commtel_tracker_rows_purged_total", {"table": "messages"}) == 6
    assert sorted(r["state"] for r in stored_rows(db_url)) == ["completed", "in_progress", "in_progress", "pending"]
    assert tracker.purge(completed_before=clock.now + 1, batch=100) == 1  # epoch seconds work too
    assert tracker.counts()[MessageState.PENDING] == 1
    tracker.close()


@pytest.mark.parametrize(
    ("when", "batch"),
    [(datetime(2024, 1, 1), 10), (math.nan, 10), (math.inf, 10), ("yesterday", 10), (0.0, 0), (0.0, -5), (0.0, 2.5)],
)
def test_purge_refuses_a_naive_or_non_finite_cutoff_and_a_bad_batch(when: object, batch: object, driver: str) -> None:
    """A naive datetime (its zone would be a guess), NaN/inf or a batch < 1 is a ConfigurationError; nothing is deleted."""
    with conversation_tracker(driver, "sqlite://") as tracker:
        with pytest.raises(ConfigurationError, match="completed_before|batch"):
            tracker.purge(completed_before=when, batch=batch)


def test_retention_purges_during_claims_at_most_once_a_minute(driver: str, clock: FakeClock, registry) -> None:
    """With retention_s, claims purge finished messages older than it: one batch a minute, not on every claim."""
    with conversation_tracker(driver, "sqlite://", clock=clock, retention_s=timedelta(hours=1)) as tracker:
        for i in range(4):
            tracker.track_message("c", f"old{i}")
        for claim in tracker.claim_batch("w", 4):
            tracker.complete(claim)
        clock.now += 3600 + 1
        with capture_events() as events:
            assert tracker.claim_next("w") is None  # the claim itself finds nothing; its purge runs
        assert [e.rows for e in events if isinstance(e, RowsPurged)] == [4]
        tracker.track_message("c", "new")
        claim = tracker.claim_next("w")
        assert claim is not None
        tracker.complete(claim)
        clock.now += 3600 + 30  # "new" is old enough now, but the last purge was 30 s + 1 h ago... once a minute
        with capture_events() as events:
            tracker.claim_next("w")
            tracker.claim_next("w")
        assert [e.rows for e in events if isinstance(e, RowsPurged)] == [1]
        assert registry.get_sample_value("commtel_tracker_rows_purged_total", {"table": "messages"}) == 5


def test_retention_schedule_keeps_going_while_a_backlog_lasts() -> None:
    """The sans-I/O schedule: due once per minute (or retention period), at once again after a full batch."""
    retention = Retention(timedelta(seconds=30))
    assert retention.due(1000.0) == 970.0
    assert retention.due(1010.0) is None  # next slot: 30 s later (the retention period is shorter than a minute)
    retention.ran(1010.0, 10)
    assert retention.due(1029.0) is None
    assert retention.due(1030.0) == 1000.0
    retention.ran(1030.0, RETENTION_BATCH)  # a full batch: more are waiting
    assert retention.due(1030.5) == 1000.5
    assert Retention(None).due(1e12) is None
    for bad in (0, -1, math.nan, math.inf, "1h"):
        with pytest.raises(ConfigurationError, match="retention_s"):
            Retention(bad)  # type: ignore[arg-type]


def test_progress_purge_and_retention_remove_only_finished_tasks(driver: str, clock: FakeClock, registry) -> None:
    """ProgressTracker.purge deletes tasks finished before the cut-off; running ones stay; retention does it too."""
    with progress_tracker(driver, "sqlite://", clock=clock, retention_s=DAY) as tracker:
        for task in ("done", "failed", "cancelled", "running"):
            tracker.create_progress_session(task, 1)
        tracker.finish_task("done")
        tracker.finish_task("failed", ProgressState.FAILED, error="x")
        tracker.finish_task("cancelled", "cancelled")
        clock.now += 10
        assert tracker.purge(finished_before=clock.now - 5, batch=2) == 3
        assert [s.task_id for s in tracker.list_sessions(1)] == ["running"]
        tracker.finish_task("running")
        clock.now += DAY + 1
        tracker.create_progress_session("next", 1)  # retention rides on new sessions
        assert [s.task_id for s in tracker.list_sessions(1)] == ["next"]
    assert registry.get_sample_value("commtel_tracker_rows_purged_total", {"table": "progress"}) == 4


def test_missing_indexes_are_added_to_existing_tables(tmp_path) -> None:
    """Tables made before the partial indexes existed get them when a store opens the database."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_commtel_messages_pending"))
        conn.execute(text("DROP INDEX ix_commtel_messages_finished"))
    TrackerStore(url).close()
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
    engine.dispose()
    assert {"ix_commtel_messages_pending", "ix_commtel_messages_leases", "ix_commtel_messages_finished"} <= names


# -- claim cost does not grow with completed history -------------------------------------------

_HISTORY = 50_000


def _load_completed(url: str, n: int) -> None:
    """Bulk-insert *n* completed messages (a day old) straight in SQL."""
    sql = (
        "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) "
        if url.startswith("sqlite")
        else ""
    )
    source = "g" if url.startswith("sqlite") else "generate_series(1, :n) AS g(i)"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"{sql}INSERT INTO commtel_messages (conversation_id, message_id, platform, state, attempts, "
                f"created_at, updated_at) SELECT 'c', 'h' || i, 'email', 'completed', 1, 1.0, 1.0 FROM {source}"
            ),
            {"n": n},
        )
        if not url.startswith("sqlite"):
            conn.execute(text("ANALYZE commtel_messages"))
    engine.dispose()


def _claim_cost(url: str, tracker) -> int:
    """Work one claim does: SQLite VM steps, or PostgreSQL buffers touched (EXPLAIN ANALYZE of the claim)."""
    query = tracker.store.sql.claim("probe", now=2e9, expires=2e9 + 30, limit=1, conversation_id=None, platform=None)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 1)
        assert len(conn.execute(query.sql, query.params).fetchall()) == 1
        conn.rollback()
        conn.close()
        return steps[0]
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:  # one transaction, rolled back
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query.sql, query.params).fetchone()[0]
        conn.rollback()
    node = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    return int(node["Shared Hit Blocks"] + node["Shared Read Blocks"])


def test_claim_cost_does_not_grow_with_completed_history(db_url: str) -> None:
    """A claim probes the pending and lease indexes only: the same work with 0 or 50k completed messages."""
    tracker = conversation_tracker("sync", db_url)
    for i in range(20):
        tracker.track_message("c", f"p{i}")
    empty = _claim_cost(db_url, tracker)
    _load_completed(db_url, _HISTORY)
    full = _claim_cost(db_url, tracker)
    print(
        f"\nclaim cost, {db_url.split(':', maxsplit=1)[0]}: {empty} with no history, {full} with {_HISTORY:,} completed"
    )
    assert full <= empty * 1.5 + 20  # a scan of the history would cost thousands
    assert tracker.claim_next("w") is not None
    tracker.close()
