"""ProgressTracker: sessions per user, authorization, validation, callbacks, persistence, telemetry."""

from __future__ import annotations

import asyncio
import io
import math
import os
import subprocess
import sys
import threading

from collections.abc import Iterator
from pathlib import Path

import pytest

from rich.console import Console

from commtel.errors import AuthorizationError, ConfigurationError, StateTransitionError
from commtel.progress._progress import (
    ProgressState,
    ProgressStatus,
    ProgressTracker,
    estimate_eta_s,
    progress_bar,
    validate_percent,
)
from commtel.telemetry import start_span
from tests.harness.clock import FakeClock
from tests.tracker.drivers import DRIVERS, progress_tracker


ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = 101, "bob"


@pytest.fixture
def clock() -> FakeClock:
    """A wall-like fake clock passed to the tracker as ``clock=`` (not installed over ``commtel._timing``)."""
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture(params=DRIVERS)
def tracker(clock: FakeClock, request: pytest.FixtureRequest) -> Iterator[ProgressTracker]:
    """A tracker on in-memory SQLite: ProgressTracker, or AsyncProgressTracker driven through tests/tracker/drivers.py."""
    with progress_tracker(request.param, "sqlite://", kind="caption", clock=clock) as tracker:
        yield tracker


@pytest.fixture
def sync_tracker(clock: FakeClock) -> ProgressTracker:
    """The sync ProgressTracker, for its thread-based async methods and its rich progress bar."""
    return ProgressTracker("sqlite://", kind="caption", clock=clock)


def test_two_users_each_see_only_their_own_tasks(tracker: ProgressTracker) -> None:
    """Another user's get/create/update is refused with AuthorizationError; listings are per user."""
    assert tracker.create_progress_session("task_a", ALICE) == "task_a"
    tracker.create_progress_session("task_b", BOB)
    tracker.update_progress("task_a", "Processing images", 25, {"images_processed": 5, "total_images": 20})
    status = tracker.get_progress("task_a", ALICE)
    assert status is not None
    assert status.progress_percent == 25
    with pytest.raises(AuthorizationError, match="another user"):
        tracker.get_progress("task_a", BOB)
    with pytest.raises(AuthorizationError):
        tracker.get_progress("task_a", "101")  # same digits, different id type: still another user
    with pytest.raises(AuthorizationError):
        tracker.create_progress_session("task_a", BOB)
    with pytest.raises(AuthorizationError):
        tracker.update_progress("task_a", "hijack", 99, user_id=BOB)
    assert [s.task_id for s in tracker.list_sessions(ALICE)] == ["task_a"]
    assert [s.task_id for s in tracker.list_sessions(BOB)] == ["task_b"]
    assert tracker.get_progress("missing", ALICE) is None


@pytest.mark.parametrize("bad", [-0.1, 100.5, math.nan, math.inf, True, "50", None])
def test_percent_outside_0_to_100_is_rejected(tracker: ProgressTracker, bad: object) -> None:
    """update_progress refuses percents that are not numbers from 0 to 100."""
    tracker.create_progress_session("t", ALICE)
    with pytest.raises(ValueError, match="progress_percent"):
        tracker.update_progress("t", "step", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, True, "5"])
def test_eta_that_is_not_a_finite_duration_is_rejected(tracker: ProgressTracker, bad: object) -> None:
    """update_progress refuses an eta_s that is negative, NaN, infinite or not a number; nothing is stored."""
    tracker.create_progress_session("t", ALICE)
    with pytest.raises(ValueError, match="eta_s"):
        tracker.update_progress("t", "step", 10, eta_s=bad)  # type: ignore[arg-type]
    status = tracker.get_progress("t", ALICE)
    assert status is not None
    assert status.progress_percent == 0


@pytest.mark.parametrize("bad", ["", None, 5])
def test_kind_must_be_a_non_empty_string(bad: object) -> None:
    """kind is a metric label value: a non-empty string, at construction and per session."""
    with pytest.raises(ConfigurationError, match="kind"):
        ProgressTracker("sqlite://", kind=bad)  # type: ignore[arg-type]
    tracker = ProgressTracker("sqlite://")
    if bad is not None:  # None per session means the tracker's kind
        with pytest.raises(ConfigurationError, match="kind"):
            tracker.create_progress_session("t", ALICE, kind=bad)  # type: ignore[arg-type]


def test_eight_threads_share_an_in_memory_progress_store(clock: FakeClock) -> None:
    """`sqlite://` under 8 threads: every session created, updated and finished, no error."""
    tracker = ProgressTracker("sqlite://", clock=clock)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(user: int) -> None:
        start.wait()
        try:
            for n in range(15):
                task = f"u{user}-t{n}"
                tracker.create_progress_session(task, user)
                assert tracker.update_progress(task, "half", 50)
                tracker.finish_task(task)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(user,)) for user in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for user in range(8):
        sessions = tracker.list_sessions(user)
        assert len(sessions) == 15
        assert {s.state for s in sessions} == {ProgressState.COMPLETED}


def test_eta_is_estimated_from_the_pace_so_far(tracker: ProgressTracker, clock: FakeClock) -> None:
    """25% after 10 s leaves an ETA of 30 s; an explicit eta_s wins; to_dict has ISO times."""
    tracker.create_progress_session("t", ALICE)
    clock.now += 10
    tracker.update_progress("t", "quarter", 25)
    status = tracker.get_progress("t", ALICE)
    assert status is not None
    assert status.eta_s == pytest.approx(30.0)
    assert status.eta is not None
    data = status.to_dict()
    assert data["started_at"].endswith("+00:00")
    assert data["eta"] == status.eta.isoformat()
    assert data["state"] == "running"
    tracker.update_progress("t", "half", 50, eta_s=5)
    status = tracker.get_progress("t", ALICE)
    assert status is not None
    assert status.eta_s == 5
    assert estimate_eta_s(0, 10, 0) is None
    assert estimate_eta_s(0, 10, 100) == 0.0
    assert validate_percent(7) == 7.0


def test_updates_of_unknown_or_finished_tasks_return_false(tracker: ProgressTracker) -> None:
    """update_progress says False for an unknown task or one that has finished; finishing twice raises."""
    assert tracker.update_progress("nope", "x", 1) is False
    tracker.create_progress_session("t", ALICE)
    final = tracker.finish_task("t")
    assert final.state is ProgressState.COMPLETED
    assert final.progress_percent == 100
    assert tracker.update_progress("t", "x", 1) is False
    with pytest.raises(StateTransitionError):
        tracker.finish_task("t", "failed")
    with pytest.raises(StateTransitionError):
        tracker.finish_task("nope")


def test_sync_callbacks_fire_in_registration_and_update_order(tracker: ProgressTracker) -> None:
    """Callbacks run in registration order for each update, updates in order; a failing one is skipped."""
    seen: list[tuple[str, float]] = []
    tracker.create_progress_session("t", ALICE)
    tracker.register_callback("t", lambda s: seen.append(("a", s.progress_percent)))
    tracker.register_callback("t", lambda s: 1 / 0)
    tracker.register_callback("t", lambda s: seen.append(("b", s.progress_percent)))
    for pct in (10, 20, 30):
        assert tracker.update_progress("t", f"at {pct}", pct) is True
    tracker.finish_task("t")
    assert seen == [("a", 10), ("b", 10), ("a", 20), ("b", 20), ("a", 30), ("b", 30), ("a", 100), ("b", 100)]


def test_async_callback_runs_even_without_an_event_loop(tracker: ProgressTracker) -> None:
    """A coroutine callback given a sync update outside any loop is run to completion inline."""
    seen: list[float] = []

    async def on_update(status: ProgressStatus) -> None:
        await asyncio.sleep(0)
        seen.append(status.progress_percent)

    tracker.create_progress_session("t", ALICE)
    tracker.register_callback("t", on_update)
    tracker.update_progress("t", "x", 40)
    assert seen == [40]


@pytest.mark.anyio
async def test_sync_and_async_callbacks_fire_in_order(sync_tracker: ProgressTracker) -> None:
    """Mixed sync/async callbacks see every update in order, from async updates, sync updates and other threads."""
    seen: list[tuple[str, float]] = []

    async def slow_async(status: ProgressStatus) -> None:
        await asyncio.sleep(0.01 if status.progress_percent < 20 else 0)  # an early slow one must not be overtaken
        seen.append(("async", status.progress_percent))

    sync_tracker.create_progress_session("t", ALICE)
    sync_tracker.register_callback("t", lambda s: seen.append(("sync", s.progress_percent)))
    sync_tracker.register_callback("t", slow_async)

    await sync_tracker.aupdate_progress("t", "one", 1)
    assert seen == [("sync", 1), ("async", 1)]

    seen.clear()
    for pct in (10, 20, 30):  # sync updates inside the loop queue the async deliveries in order
        sync_tracker.update_progress("t", "x", pct)
    worker = threading.Thread(target=sync_tracker.update_progress, args=("t", "from thread", 40))
    worker.start()
    await asyncio.to_thread(worker.join)
    await asyncio.sleep(0)  # let the thread's hand-off reach the loop
    await sync_tracker.aflush_callbacks()
    assert [p for kind, p in seen if kind == "sync"] == [10, 20, 30, 40]
    assert [p for kind, p in seen if kind == "async"] == [10, 20, 30, 40]

    seen.clear()
    final = await sync_tracker.afinish_task("t")
    assert final.state is ProgressState.COMPLETED
    assert seen == [("sync", 100), ("async", 100)]


def test_unregistered_callback_is_not_called(tracker: ProgressTracker) -> None:
    """unregister_callback stops deliveries to that callback only."""
    seen: list[str] = []

    def a(status: ProgressStatus) -> None:
        seen.append("a")

    def b(status: ProgressStatus) -> None:
        seen.append("b")

    tracker.create_progress_session("t", ALICE)
    tracker.register_callback("t", a)
    tracker.register_callback("t", b)
    tracker.unregister_callback("t", a)
    tracker.update_progress("t", "x", 1)
    assert seen == ["b"]


_RESTART_SCRIPT = """
import sys
import commtel
import commtel.events
from commtel.progress._progress import ProgressTracker
commtel.events.set_listeners([])
tracker = ProgressTracker(sys.argv[1], kind="import")
tracker.create_progress_session("job-7", 101)
tracker.update_progress("job-7", "Processing images", 40, {"images_processed": 8, "total_images": 20})
print("saved")
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_progress_survives_a_process_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, registry
) -> None:
    """A task saved by one process is read, authorized and finished by a new tracker in another."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'progress.db'}"
    else:
        from commtel.backends._sql import make_engine
        from commtel.backends._sql_schema import progress_table

        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        progress_table.drop(engine, checkfirst=True)
        engine.dispose()
    out = subprocess.run(
        [sys.executable, "-c", _RESTART_SCRIPT, url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert out.stdout.strip() == "saved"

    tracker = ProgressTracker(url)
    status = tracker.get_progress("job-7", ALICE)
    assert status is not None
    assert (status.current_step, status.progress_percent, status.kind) == ("Processing images", 40, "import")
    assert status.details == {"images_processed": 8, "total_images": 20}
    with pytest.raises(AuthorizationError):
        tracker.get_progress("job-7", BOB)
    assert tracker.update_progress("job-7", "Resumed", 90) is True
    tracker.finish_task("job-7")
    assert (
        registry.get_sample_value("commtel_task_duration_seconds_count", {"kind": "import", "outcome": "completed"})
        == 1
    )
    assert registry.get_sample_value("commtel_tasks_active", {"kind": "import"}) == 0


def test_telemetry_gauge_histogram_and_span_events(tracker: ProgressTracker, clock: FakeClock, registry, spans) -> None:
    """Active tasks are gauged per kind, durations observed per outcome, progress shown as span events."""
    with start_span("job"):
        tracker.create_progress_session("t1", ALICE)
        tracker.create_progress_session("t2", BOB)
        assert registry.get_sample_value("commtel_tasks_active", {"kind": "caption"}) == 2
        clock.now += 12
        tracker.update_progress("t1", "half", 50)
        tracker.finish_task("t1", "failed", error="model crashed")
    assert registry.get_sample_value("commtel_tasks_active", {"kind": "caption"}) == 1
    assert (
        registry.get_sample_value("commtel_task_duration_seconds_sum", {"kind": "caption", "outcome": "failed"}) == 12
    )
    [span] = [s for s in spans.get_finished_spans() if s.name == "job"]
    progress = [e for e in span.events if e.name == "commtel.progress"]
    assert progress[0].attributes["commtel.progress.percent"] == 50
    assert progress[0].attributes["commtel.task.id"] == "t1"
    labels = {k for metric in registry.collect() for s in metric.samples for k in s.labels.values()}
    assert not labels & {"t1", "t2", str(ALICE), BOB}


def test_rich_progress_bar_follows_updates(sync_tracker: ProgressTracker) -> None:
    """progress_bar draws the current step and percent, and stops following when the block ends."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=False)
    sync_tracker.create_progress_session("cli", ALICE)
    with progress_bar(sync_tracker, "cli", console=console) as bar:
        sync_tracker.update_progress("cli", "Downloading", 30)
        sync_tracker.update_progress("cli", "Converting", 75)
        [task] = bar.tasks
        assert (task.completed, task.description) == (75, "Converting")
    sync_tracker.update_progress("cli", "after", 90)
    assert task.completed == 75
    assert "Converting" in buffer.getvalue()
