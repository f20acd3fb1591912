"""Token stores: environment, memory, and the crash-safe, cross-process file store."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

from pathlib import Path

import pytest

from commtel import BackendError
from commtel.oauth._store import (
    EnvTokenStore,
    FileTokenStore,
    MemoryTokenStore,
    TokenStore,
)
from commtel.oauth._tokens import Token


ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import dataclasses, itertools, sys
from commtel.oauth._store import FileTokenStore
from commtel.oauth._tokens import Token
store = FileTokenStore(sys.argv[1])
# A big record keeps the process inside save() (write, fsync, rename) most of the time.
token = Token("tok-" + sys.argv[2], scope="s" * 4_000_000)
for i in itertools.count():
    store.save("k", dataclasses.replace(token, issued_at=float(i)))
    if i == 0:
        print("saved", flush=True)
"""

HOLDER = """
import sys, time
from commtel.oauth._store import FileTokenStore
with FileTokenStore(sys.argv[1]).lock("k"):
    print("locked", flush=True)
    time.sleep(60)  # the behaviour under test: a holder that never lets go (the test kills it)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() in {"saved", "locked"}
    return proc


def test_env_store_reads_seed_variables_and_keeps_renewals_in_memory():
    """EnvTokenStore reads <KEY>_ACCESS_TOKEN/_REFRESH_TOKEN/_TOKEN_EXPIRES_AT; saves never touch the environment."""
    environ = {
        "TWITTER_ACCESS_TOKEN": "env-access-1",
        "TWITTER_REFRESH_TOKEN": "env-refresh-1",
        "TWITTER_TOKEN_EXPIRES_AT": "1700000000",
        "DISCORD_TOKEN": "env-discord-1",
    }
    store = EnvTokenStore(environ)
    token = store.load("twitter")
    assert token is not None
    assert (token.access_token, token.refresh_token, token.expires_at) == ("env-access-1", "env-refresh-1", 1.7e9)
    assert store.load("discord").access_token == "env-discord-1"  # the <PLATFORM>_TOKEN fallback
    assert store.load("mastodon") is None
    store.save("twitter", Token("renewed-1"))
    assert store.load("twitter").access_token == "renewed-1"
    assert environ["TWITTER_ACCESS_TOKEN"] == "env-access-1"


@pytest.mark.parametrize("make", [MemoryTokenStore, EnvTokenStore, "file"])
def test_stores_round_trip_and_delete(make, tmp_path):
    """Every store satisfies the TokenStore protocol: save, load, delete, lock."""
    store: TokenStore = FileTokenStore(tmp_path) if make == "file" else make()
    assert isinstance(store, TokenStore)
    token = Token("round-trip-1", expires_at=123.0, refresh_token="rt-round-trip", scope="a b", issued_at=100.0)
    with store.lock("svc:alice"):
        store.save("svc:alice", token)
    assert store.load("svc:alice") == token
    store.delete("svc:alice")
    store.delete("svc:alice")
    assert store.load("svc:alice") is None


def test_file_store_is_private(tmp_path):
    """The directory is 0700 and each token file 0600; no temporary file is left behind."""
    directory = tmp_path / "tokens"
    store = FileTokenStore(directory)
    store.save("k", Token("private-1"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path("k").stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir() if p.suffix != ".lock") == [store.path("k").name]
    assert store.path("k").name.startswith("k-")


def _kill_while_writing(proc: subprocess.Popen[str], directory: Path) -> bool:
    """SIGKILL *proc* the moment a temporary file shows it is mid-write; True if one was seen."""
    deadline = time.monotonic() + 5
    caught = False
    while time.monotonic() < deadline and not caught:
        caught = any(name.endswith(".tmp") for name in os.listdir(directory))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return caught


def test_file_store_survives_sigkill_mid_write(tmp_path):
    """A writer killed with SIGKILL while a save is in progress never leaves a torn token behind."""
    directory = tmp_path / "tokens"
    for round_ in range(3):
        proc = _spawn(WRITER, str(directory), str(round_))
        assert _kill_while_writing(proc, directory)
        store = FileTokenStore(directory)
        token = store.load("k")
        assert token is not None
        assert token.access_token == f"tok-{round_}"
        assert token.issued_at is not None and token.issued_at.is_integer()
        assert len(token.scope) == 4_000_000
        assert stat.S_IMODE(store.path("k").stat().st_mode) == 0o600
        store.save("k", token)  # the store keeps working next to the dead writer's temporary file


def test_file_lock_is_cross_process_and_dies_with_its_holder(tmp_path):
    """Another process's lock makes lock() time out with BackendError; once it is killed the lock is free."""
    holder = _spawn(HOLDER, str(tmp_path))
    try:
        store = FileTokenStore(tmp_path, lock_timeout_s=0.2)
        with pytest.raises(BackendError), store.lock("k"):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    started = time.monotonic()
    with FileTokenStore(tmp_path, lock_timeout_s=5).lock("k"):
        pass
    assert time.monotonic() - started < 1
