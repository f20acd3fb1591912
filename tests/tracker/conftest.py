"""Tracker fixtures: a fresh database on SQLite and on real PostgreSQL, sync and async drivers, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlalchemy import select

from commtel.backends._sql import make_engine
from commtel.backends._sql_schema import messages_table, metadata
from tests.tracker.drivers import DRIVERS


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty tracker database: a SQLite file, or the session's PostgreSQL with tables dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    yield url


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    """Which tracker runs the test: ``sync`` (ConversationTracker) or ``async`` (AsyncConversationTracker)."""
    return str(request.param)


def stored_rows(url: str) -> list[dict]:
    """Every stored message row of the database at *url*, in insertion order (read with a plain engine)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(messages_table).order_by(messages_table.c.id)).mappings()]
    finally:
        engine.dispose()


class Worker:
    """A worker process (tests/tracker/worker.py) started and released by the test."""

    def __init__(
        self, url: str, worker_id: str, lease_s: float, batch: int = 1, *, hold: bool = False, driver: str = "sync"
    ) -> None:
        args = [sys.executable, "-m", "tests.tracker.worker", url, worker_id, str(lease_s), str(batch), driver]
        if hold:
            args.append("hold")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.worker_id = worker_id
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line + (self.proc.stderr.read() if self.proc.stderr else "")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def finish(self, timeout: float = 60.0) -> list[str]:
        """Wait for the worker to exit; the ids it reported completed."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("done ")]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=10)
