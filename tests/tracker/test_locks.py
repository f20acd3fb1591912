"""FileLock: mutual exclusion across processes, timeouts, the locked() form, async use."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from pathlib import Path

import pytest

from commtel.messages._locks import FileLock, LockTimeoutError


_INCREMENT = """
import sys
from pathlib import Path
from commtel.messages._locks import FileLock
lock, counter = FileLock(sys.argv[1]), Path(sys.argv[2])
for _ in range(40):
    with lock.locked():
        value = int(counter.read_text())
        counter.write_text(str(value + 1))
"""


def test_processes_never_overlap_inside_the_lock(tmp_path: Path) -> None:
    """Three processes doing read-modify-write under the lock lose no increment."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _INCREMENT, str(tmp_path / "c.lock"), str(counter)], env=env)
        for _ in range(3)
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    assert counter.read_text() == "120"


def test_timeout_raises_lock_timeout_error(tmp_path: Path) -> None:
    """A second holder waits at most its timeout, then gets LockTimeoutError (a TimeoutError)."""
    path = tmp_path / "x.lock"
    with FileLock(path).locked():
        with pytest.raises(TimeoutError, match="within 0.05s"):
            with FileLock(path, timeout_s=0.05):
                pass
        with pytest.raises(LockTimeoutError):
            FileLock(path).acquire(timeout_s=0)
    other = FileLock(path)
    with other.locked(timeout_s=0):
        assert other.is_locked
    assert not other.is_locked


@pytest.mark.anyio
async def test_async_lock_waits_without_blocking_the_loop(tmp_path: Path) -> None:
    """async with waits for the holder while other tasks keep running, and honours timeouts."""
    path = tmp_path / "a.lock"
    holder, waiter = FileLock(path), FileLock(path)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(5):
            await asyncio.sleep(0.01)  # the behaviour under test: other tasks run while one waits
            ticks += 1

    async with holder:
        with pytest.raises(LockTimeoutError):
            async with waiter.alocked(timeout_s=0.05):
                pass
        task = asyncio.create_task(ticker())
        acquiring = asyncio.create_task(waiter.aacquire())
        await task
        assert not acquiring.done()
    await acquiring
    assert waiter.is_locked
    waiter.release()
    assert ticks == 5
