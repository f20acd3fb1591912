"""Many worker processes share one tracker on SQLite and PostgreSQL: exactly-once completion, lease takeover.

Every test runs with sync workers (ConversationTracker) and async ones (AsyncConversationTracker).
"""

from __future__ import annotations

import time

from commtel.backends._sql_store import TrackerStore
from commtel.messages._headers import MessageHeaders
from commtel.messages._tracker import ConversationTracker, MessageState
from tests.tracker.conftest import Worker, stored_rows


N_MESSAGES = 2000


def _seed(url: str, n: int) -> None:
    roots = [MessageHeaders.create(f"thread {c}", platform="discord", native_id=f"{c}00000") for c in range(20)]
    batch = list(roots)
    for i in range(n - len(roots)):
        batch.append(roots[i % len(roots)].reply(native_id=str(10_000_000 + i)))
    with ConversationTracker(url) as tracker:
        for start in range(0, len(batch), 500):
            tracker.track_headers(*batch[start : start + 500])
        assert tracker.counts()[MessageState.PENDING] == n


def _run(workers: list[Worker]) -> float:
    for w in workers:
        w.wait_ready()
    started = time.perf_counter()
    for w in workers:
        w.go()
    return started


def test_four_worker_processes_complete_each_message_exactly_once(db_url: str, driver: str, record_property) -> None:
    """4 processes claim and complete 2,000 messages: every message completed once, by the worker that says so."""
    _seed(db_url, N_MESSAGES)
    workers = [Worker(db_url, f"w{i}", lease_s=30.0, driver=driver) for i in range(4)]
    started = _run(workers)
    reported = {w.worker_id: w.finish() for w in workers}
    elapsed = time.perf_counter() - started
    all_ids = [i for ids in reported.values() for i in ids]
    assert len(all_ids) == N_MESSAGES
    assert len(set(all_ids)) == N_MESSAGES
    rows = stored_rows(db_url)
    assert {r["state"] for r in rows} == {"completed"}
    assert {r["attempts"] for r in rows} == {1}
    for worker_id, ids in reported.items():
        assert {r["message_id"] for r in rows if r["lease_owner"] == worker_id} == set(ids)
    assert all(len(ids) > 0 for ids in reported.values())  # all four really took part
    record_property("claims_per_s", round(N_MESSAGES / elapsed))
    print(
        f"\n{db_url.split(':', maxsplit=1)[0]} ({driver}): {N_MESSAGES} claim+complete by 4 processes in {elapsed:.2f}s "
        f"= {N_MESSAGES / elapsed:.0f}/s"
    )


def test_message_of_sigkilled_worker_is_completed_by_another_after_lease_expiry(db_url: str, driver: str) -> None:
    """A worker SIGKILLed while holding a claim loses it when the 1 s lease expires; another completes it."""
    _seed(db_url, 40)
    victim = Worker(db_url, "victim", lease_s=1.0, hold=True, driver=driver)
    victim.wait_ready()
    victim.go()
    held = victim.readline().removeprefix("claimed ")
    victim.kill()
    killed_at = time.monotonic()
    held_row = next(r for r in stored_rows(db_url) if r["message_id"] == held)
    assert held_row["state"] == "in_progress"
    assert held_row["lease_owner"] == "victim"

    survivors = [Worker(db_url, f"s{i}", lease_s=1.0, driver=driver) for i in range(2)]
    _run(survivors)
    reported = {w.worker_id: w.finish() for w in survivors}
    assert 0.9 <= time.monotonic() - killed_at < 15  # the survivors waited for the lease, then took it over
    all_ids = [i for ids in reported.values() for i in ids]
    assert sorted(all_ids) == sorted(r["message_id"] for r in stored_rows(db_url))
    held_row = next(r for r in stored_rows(db_url) if r["message_id"] == held)
    assert held_row["state"] == "completed"
    assert held_row["attempts"] == 2
    assert held_row["lease_owner"] in reported
    assert held in reported[held_row["lease_owner"]]


def test_worker_sigkilled_mid_run_loses_nothing(db_url: str, driver: str) -> None:
    """SIGKILL one of 4 busy workers mid-run: all messages still end completed exactly once.

    The victim starts first and is killed as the others start, so it dies with most of the work
    still pending whatever the scheduling (on SQLite a worker can be starved of the write lock
    until the others have taken everything).
    """
    n = 800
    _seed(db_url, n)
    workers = [Worker(db_url, f"w{i}", lease_s=1.0, driver=driver) for i in range(4)]
    victim, others = workers[0], workers[1:]
    _run([victim])
    for _ in range(20):
        assert victim.readline().startswith("done ")
    _run(others)
    victim.kill()
    reported = {w.worker_id: w.finish() for w in others}
    rows = stored_rows(db_url)
    assert len(rows) == n
    assert {r["state"] for r in rows} == {"completed"}
    for worker_id, ids in reported.items():
        assert len(ids) == len(set(ids))
        assert {r["message_id"] for r in rows if r["lease_owner"] == worker_id} == set(ids)
    assert sum(len(ids) for ids in reported.values()) + sum(r["lease_owner"] == "w0" for r in rows) == n


def test_store_accepts_a_state_directory(tmp_path) -> None:
    """The directory form ConversationTracker('/path/to/state') keeps a SQLite file in that directory."""
    tracker = ConversationTracker(tmp_path / "state")
    tracker.track_message("conv-1", "msg-1")
    assert (tmp_path / "state" / "commtel-tracker.db").exists()
    assert isinstance(tracker.store, TrackerStore)
