"""Multiprocess metrics: gunicorn with killed workers, dead workers' files folded, scrapes never go backwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

from collections.abc import Iterator
from pathlib import Path

import pytest

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from commtel.telemetry import mark_process_dead
from commtel.telemetry._multiprocess import locked_registry
from tests.harness.procs import free_port, wait_port
from tests.harness.waiting import eventually


ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return _samples(resp.read().decode())


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return str(resp.read().decode())


def _children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _need_gunicorn() -> None:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        msg = "gunicorn is not installed: pip install gunicorn (it is in the tests extra)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _eventually(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    return eventually(check, timeout=timeout, interval=0.2, ignoring=(AssertionError, OSError))


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """gunicorn with 4 workers, commtel's hooks, a multiprocess directory; (master, port, directory)."""
    _need_gunicorn()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"")  # a stale file from an earlier run: on_starting clears it
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        "from commtel.telemetry.gunicorn import child_exit, on_starting  # noqa: F401\n"
        f"bind = '127.0.0.1:{port}'\nworkers = 4\ngraceful_timeout = 5\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_MULTIPROC"))}
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        COMMTEL_TEST_STATE=str(tmp_path),
        PYTHONPATH=str(ROOT),
    )
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "gunicorn.conf.py"), "tests.ops.gunicorn_app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.log").open("wb"),
    )
    try:
        wait_port(port, 60, master)
        yield master, port, metrics_dir
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(30)


def test_gunicorn_with_two_workers_killed_shows_one_state_per_breaker_and_live_tasks_only(gunicorn) -> None:  # type: ignore[no-untyped-def]
    """4 workers, the one that tripped the breaker and one more SIGKILLed: one state, 4 live tasks, counts kept."""
    master, port, metrics_dir = gunicorn
    state = ("commtel_circuit_state", frozenset({("breaker", "api")}))
    active = ("commtel_tasks_active", frozenset({("kind", "job")}))
    trips = (
        "commtel_circuit_transitions_total",
        frozenset({("breaker", "api"), ("from_state", "closed"), ("to_state", "open")}),
    )

    def all_booted() -> set[int]:
        workers = _children(master.pid)
        assert len(workers) == 4
        assert _scrape(port)[active] == 4
        return workers

    workers = _eventually(all_booted)
    assert not (metrics_dir / "counter_99999.db").exists()
    tripped = int(_get(port, "/trip"))
    assert tripped in workers
    assert _scrape(port)[state] == 2  # open: the latest change of any live worker
    victims = {tripped, next(iter(workers - {tripped}))}
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    def respawned() -> set[int]:
        now = _children(master.pid)
        assert len(now) == 4 and not now & victims
        assert _scrape(port)[active] == 4
        return now

    _eventually(respawned)
    for _ in range(8):  # every worker answers the same
        samples = _scrape(port)
        assert [k for k in samples if k[0] == "commtel_circuit_state"] == [state]
        assert samples[state] == 0  # the breaker that was open died with its worker
        assert samples[active] == 4  # live workers only (the 2 dead ones' tasks are gone)
        assert samples[trips] == 1  # the dead worker's trip is still counted
        assert samples[("commtel_build_info", frozenset({("version", _version())}))] == 1
    left = {p.name for p in metrics_dir.iterdir()}
    assert not {name for name in left for pid in victims if name.endswith(f"_{pid}.db")}
    assert "counter_archive.db" in left


def _version() -> str:
    import commtel

    return str(commtel.__version__)


_DEAD_WORKERS = """
import os, sys, time
from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead as forget_live_gauges_only
from commtel import CircuitBreaker, RateLimiter, RetryPolicy, _events
from commtel.ratelimit import TokenBucket
from commtel.telemetry import OperationTracker, _metrics, mark_process_dead

fold = sys.argv[1] == "fold"
directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
for i in range(int(sys.argv[2])):
    pid = 1_000_000 + i
    # A worker's life, written to files named after a pid of its own.
    values.ValueClass = values.MultiProcessValue(lambda pid=pid: pid)
    _metrics._current = _metrics.Metrics(None)
    _events.invalidate_bindings()
    breaker = CircuitBreaker("api", failure_threshold=3)
    limiter = RateLimiter(TokenBucket(100.0, 10), name="quota", platform="chat")
    policy = RetryPolicy(operation="send", platform="chat", max_attempts=2)
    limiter.try_acquire("k")
    policy.call(breaker.call, lambda: None)
    OperationTracker().start_operation("send", "chat").complete(True)
    values.close_all_multiprocess_files()
    (mark_process_dead if fold else forget_live_gauges_only)(pid, directory)
"""


def _dead_workers(directory: Path, mode: str, count: int) -> None:
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_DEAD_WORKERS), mode, str(count)],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )


def _scrape_dir(directory: Path) -> tuple[float, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """(median seconds of 5 scrapes, the samples) of a multiprocess directory."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        text = generate_latest(locked_registry(directory)).decode()
        times.append(time.perf_counter() - started)
    return sorted(times)[2], _samples(text)


def _counts(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float],
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples that count events (histogram buckets and sums hold timings, different in every run)."""
    return {key: value for key, value in samples.items() if not key[0].endswith(("_sum", "_bucket"))}


def test_400_dead_workers_leave_three_files_the_same_totals_and_a_fast_scrape(tmp_path: Path) -> None:
    """Folded: ≤ 3 archive files and < 1 MB whatever the number of dead workers; totals equal; scrape ≥ 5x faster."""
    folded, kept = tmp_path / "folded", tmp_path / "kept"
    _dead_workers(folded, "fold", 400)
    _dead_workers(kept, "keep", 400)
    folded_files = sorted(p.name for p in folded.glob("*.db"))
    assert folded_files == ["counter_archive.db", "histogram_archive.db"]
    folded_bytes = sum(p.stat().st_size for p in folded.iterdir())
    kept_bytes = sum(p.stat().st_size for p in kept.iterdir())
    assert folded_bytes < 1_000_000 < kept_bytes
    folded_s, folded_samples = _scrape_dir(folded)
    kept_s, kept_samples = _scrape_dir(kept)
    assert _counts(folded_samples) == _counts(kept_samples)
    decisions = (
        "commtel_ratelimit_decisions_total",
        frozenset({("limiter", "quota"), ("platform", "chat"), ("decision", "allowed")}),
    )
    assert folded_samples[decisions] == 400
    assert not [k for k in folded_samples if k[0] in {"commtel_circuit_state", "commtel_tasks_active"}]
    assert folded_s * 5 < kept_s, (folded_s, kept_s)
    print(  # the numbers for the ops docs (pytest -s)
        f"400 dead workers: {len(list(kept.glob('*.db')))} files, {kept_bytes / 1e6:.1f} MB, {kept_s * 1000:.1f} ms a scrape; "
        f"folded: {len(folded_files)} files, {folded_bytes / 1e3:.0f} kB, {folded_s * 1000:.2f} ms"
    )


def test_scrapes_never_go_backwards_while_dead_workers_are_folded(tmp_path: Path) -> None:
    """A scraper racing mark_process_dead sees counter totals only grow, ending at every worker's count."""
    directory = tmp_path / "metrics"
    _dead_workers(directory, "keep", 60)
    decisions = (
        "commtel_ratelimit_decisions_total",
        frozenset({("limiter", "quota"), ("platform", "chat"), ("decision", "allowed")}),
    )
    seen: list[float] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            seen.append(_samples(generate_latest(locked_registry(directory)).decode())[decisions])

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(60):
            mark_process_dead(1_000_000 + i, directory)
    finally:
        done.set()
        scraper.join()
    assert seen and seen == [60.0] * len(seen)
    assert sorted(p.name for p in directory.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    mark_process_dead(1_000_000, directory)  # again: nothing left to fold, nothing lost
    assert _samples(generate_latest(locked_registry(directory)).decode())[decisions] == 60
