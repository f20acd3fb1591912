"""FileTokenStore against hostile keys, planted links, shared directories and full or read-only disks.

Disk full and read-only are real: a 64 KB tmpfs is mounted for the test (this needs
root; ``CI`` makes a missing permission a failure). Without permission to mount, the
test falls back to the closest substitute that still makes the kernel refuse the write,
``RLIMIT_FSIZE`` (``EFBIG``), in a child process, and says so in the skip reason of the
tmpfs variant.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys

from collections.abc import Iterator
from pathlib import Path

import pytest

import commtel.events

from commtel import BackendError, ConfigurationError, OAuthClient
from commtel.oauth import FileTokenStore, Token, TokenStoreWriteFailed


ROOT = Path(__file__).resolve().parents[2]


def test_different_keys_never_share_a_file(tmp_path: Path) -> None:
    """twitter:alice, twitter/alice and twitter_alice used to share twitter_alice.json: cross-user token confusion."""
    store = FileTokenStore(tmp_path / "tokens")
    keys = [
        "twitter:alice",
        "twitter/alice",
        "twitter_alice",
        "twitter alice",
        "../twitter_alice",
        "ｔwitter_alice",
        ".",
        "..",
    ]
    for n, key in enumerate(keys):
        store.save(key, Token(f"token-of-user-{n}"))
    paths = {store.path(key) for key in keys}
    assert len(paths) == len(keys)
    assert all(path.parent == tmp_path / "tokens" for path in paths)
    for n, key in enumerate(keys):
        assert store.load(key).access_token == f"token-of-user-{n}"


def test_a_long_key_gets_a_short_file_name(tmp_path: Path) -> None:
    """Keys of any length work (a 300-character key used to fail with ENAMETOOLONG)."""
    store = FileTokenStore(tmp_path)
    long_keys = ["u" * 10_000, "u" * 10_000 + "x", "é" * 5_000]
    for n, key in enumerate(long_keys):
        store.save(key, Token(f"long-key-token-{n}"))
        with store.lock(key):
            pass
    assert max(len(store.path(key).name) for key in long_keys) <= 86
    assert [store.load(key).access_token for key in long_keys] == [f"long-key-token-{n}" for n in range(3)]


def test_a_planted_link_is_never_followed(tmp_path: Path) -> None:
    """A symlink at the token file's path is refused on read and replaced (not written through) on save."""
    store = FileTokenStore(tmp_path / "tokens")
    victim = tmp_path / "victim.json"
    victim.write_text('{"access_token": "attacker-chosen-token"}', encoding="utf-8")
    store.path("k").symlink_to(victim)
    with pytest.raises(BackendError, match="symbolic link"):
        store.load("k")
    store.save("k", Token("my-own-token-1"))
    assert victim.read_text(encoding="utf-8") == '{"access_token": "attacker-chosen-token"}'
    assert not store.path("k").is_symlink()
    assert store.load("k").access_token == "my-own-token-1"


def test_a_planted_lock_link_is_refused(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    victim = tmp_path / "important.txt"
    victim.write_text("keep me", encoding="utf-8")
    store.path("k").with_suffix(".lock").symlink_to(victim)
    with pytest.raises(BackendError, match="symbolic link"), store.lock("k"):
        pass
    assert victim.read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o722])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 700"):
        FileTokenStore(directory)
    directory.chmod(0o700)
    FileTokenStore(directory)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")
def test_a_directory_another_user_owns_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(ConfigurationError, match="owned by uid 65534"):
        FileTokenStore(directory)


# -- disk full, read-only: keep the token in memory, say so once, no refresh storm -------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KB tmpfs mounted for the test (root only)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir(mode=0o700)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}; the RLIMIT_FSIZE variant still runs")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> None:
    """Write until the file system says ENOSPC."""
    with (directory / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with pytest.raises(OSError) as info:
        (directory / "probe").write_bytes(b"x" * 8192)
    assert info.value.errno == errno.ENOSPC


class _Events:
    def __init__(self) -> None:
        self.failed: list[TokenStoreWriteFailed] = []

    def __call__(self, event: object) -> None:
        if isinstance(event, TokenStoreWriteFailed):
            self.failed.append(event)


@pytest.fixture
def failures() -> Iterator[_Events]:
    listener = _Events()
    commtel.events.set_listeners([*commtel.events.get_listeners(), listener])
    yield listener


def _storm_check(store: FileTokenStore, provider, client_secret, authserver, failures: _Events, error: str) -> None:
    client = OAuthClient(provider, "app", client_secret, grant_type="client_credentials", store=store, key="app:bob")
    first = client.get_token()
    for _ in range(20):
        assert client.get_token() == first
    assert authserver.counts["client_credentials"] == 1, "every get_token() fetched a new token (refresh storm)"
    assert store.load("app:bob") == first
    for _ in range(3):
        client.client_credentials()  # each renewal's save fails again
    assert [event.error for event in failures.failed] == [error], "say it once, not once per failed save"
    assert authserver.counts["client_credentials"] == 4


def test_disk_full_keeps_the_token_in_memory_without_a_refresh_storm(
    tiny_disk: Path, provider, client_secret, authserver, failures
) -> None:
    store = FileTokenStore(tiny_disk / "tokens")
    _fill(tiny_disk)
    _storm_check(store, provider, client_secret, authserver, failures, "ENOSPC")
    (tiny_disk / "filler").unlink()
    token = Token("after-space-was-freed")
    store.save("app:bob", token)  # writes again: the kept token is dropped, the file is the truth
    assert FileTokenStore(tiny_disk / "tokens").load("app:bob") == token


def test_read_only_file_system_keeps_the_token_in_memory(
    tiny_disk: Path, provider, client_secret, authserver, failures
) -> None:
    store = FileTokenStore(tiny_disk / "tokens")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    _storm_check(store, provider, client_secret, authserver, failures, "EROFS")


FSIZE_CHILD = """
import resource, signal, sys
from commtel.oauth import FileTokenStore, Token
import commtel.events
seen = []
commtel.events.set_listeners([lambda event: seen.append(type(event).__name__ + ":" + getattr(event, "error", ""))])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = FileTokenStore(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))
for n in range(5):
    store.save("k", Token("token-too-big-to-write-%d" % n))
print(store.load("k").access_token, [s for s in seen if s.startswith("TokenStoreWriteFailed")])
"""


def test_a_refused_write_keeps_the_token_in_memory_rlimit_variant(tmp_path: Path) -> None:
    """Substitute for hosts where mounting is not allowed: the kernel refuses writes over RLIMIT_FSIZE (EFBIG)."""
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(tmp_path / "tokens")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "token-too-big-to-write-4 ['TokenStoreWriteFailed:EFBIG']"
    assert not list((tmp_path / "tokens").glob("*.json"))
