"""Where tokens live between calls and processes: the :class:`TokenStore` protocol and three stores.

- :class:`MemoryTokenStore`: the default, one process.
- :class:`EnvTokenStore`: reads ``<KEY>_ACCESS_TOKEN`` (or ``<KEY>_TOKEN``) and
  ``<KEY>_REFRESH_TOKEN`` from the environment; renewed tokens stay in memory, the environment is never written.
- :class:`FileTokenStore`: one JSON file per key in a ``0700`` directory, each
  file ``0600``, replaced atomically (write a temp file, fsync, rename, fsync the
  directory), so a crash mid-write leaves the previous token intact. Its
  :meth:`~FileTokenStore.lock` is a cross-process lock (filelock), so two
  processes sharing the directory never both spend a rotating refresh token.

A store's :meth:`~TokenStore.lock` serializes renewals of one key; the OAuth
client re-reads the store under it before refreshing. It must be releasable from
another thread than the one that acquired it (the async client enters and exits
it in worker threads).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import threading

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

import filelock

from .. import _events
from .. import _validation as check
from .._exceptions import BackendError, ConfigurationError
from ._events import TokenStoreWriteFailed
from ._tokens import Token


__all__ = ["EnvTokenStore", "FileTokenStore", "MemoryTokenStore", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """Persistence for OAuth tokens, keyed by a short name (``"twitter"``, ``"twitter:alice"``).

    .. versionadded:: 0.1.0
    """

    def load(self, key: str) -> Token | None:
        """The token saved under *key*, or ``None``."""
        ...

    def save(self, key: str, token: Token) -> None:
        """Save *token* under *key*, replacing any previous one atomically."""
        ...

    def delete(self, key: str) -> None:
        """Forget the token under *key* (no error if there is none)."""
        ...

    def lock(self, key: str) -> AbstractContextManager[None]:
        """A lock that serializes renewals of *key* among everyone sharing this store."""
        ...


class _KeyLocks:
    """One plain (non-reentrant, any-thread-releasable) lock per key."""

    __slots__ = ("_guard", "_locks")

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class MemoryTokenStore:
    """Tokens in a dict, for one process (the default store).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_locks", "_tokens")

    def __init__(self, tokens: Mapping[str, Token] | None = None) -> None:
        self._tokens: dict[str, Token] = dict(tokens or {})
        self._locks = _KeyLocks()

    def __repr__(self) -> str:
        return f"MemoryTokenStore(keys={sorted(self._tokens)})"

    def load(self, key: str) -> Token | None:
        return self._tokens.get(key)

    def save(self, key: str, token: Token) -> None:
        self._tokens[key] = token

    def delete(self, key: str) -> None:
        self._tokens.pop(key, None)

    def lock(self, key: str) -> AbstractContextManager[None]:
        return _locked(self._locks.get(key))


@contextlib.contextmanager
def _locked(lock: threading.Lock) -> Iterator[None]:
    with lock:
        yield


class EnvTokenStore(MemoryTokenStore):
    """Tokens from environment variables (``<KEY>_ACCESS_TOKEN`` and friends).

    For key ``twitter`` it reads ``TWITTER_ACCESS_TOKEN`` (falling back to
    ``TWITTER_TOKEN``), ``TWITTER_REFRESH_TOKEN`` and ``TWITTER_TOKEN_EXPIRES_AT``
    (epoch seconds). Saved tokens (after a refresh) are kept in memory and win
    over the environment; the environment is never modified.

    Args:
        environ: Mapping to read instead of ``os.environ`` (tests).
        prefix: Prepended to every variable name (``"MYAPP_"``).

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_environ", "_prefix")

    def __init__(self, environ: Mapping[str, str] | None = None, *, prefix: str = "") -> None:
        super().__init__()
        self._environ = os.environ if environ is None else environ
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"EnvTokenStore(prefix={self._prefix!r})"

    def variable(self, key: str, suffix: str) -> str:
        """The variable name for *key* and *suffix*: ``variable("twitter", "ACCESS_TOKEN")``."""
        name = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()
        return f"{self._prefix}{name}_{suffix}"

    def load(self, key: str) -> Token | None:
        saved = super().load(key)
        if saved is not None:
            return saved
        env = self._environ
        access = env.get(self.variable(key, "ACCESS_TOKEN")) or env.get(self.variable(key, "TOKEN"))
        if not access:
            return None
        expires_at = env.get(self.variable(key, "TOKEN_EXPIRES_AT"))
        return Token(
            access_token=access,
            refresh_token=env.get(self.variable(key, "REFRESH_TOKEN")) or None,
            expires_at=float(expires_at) if expires_at else None,
        )


_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.@+-]")
#: Characters of the key kept readable in a file name; the rest of the name is a hash.
_READABLE = 48
_log = logging.getLogger("commtel.oauth")


class FileTokenStore:
    """Tokens as ``0600`` JSON files in a private directory, written atomically, locked across processes.

    Each key has its own file, named ``<readable part of the key>-<hash of the key>.json``:
    ``twitter:alice``, ``twitter/alice`` and ``twitter_alice`` get three different files, and
    a key of any length gets a name of at most 86 characters. Token files are opened
    without following symbolic links (a planted link is refused with
    :class:`~commtel.BackendError`), and a directory that another user owns or that the
    group or others can write is refused with :class:`~commtel.ConfigurationError` (make
    it ``chmod 700``). When a save fails (disk full, read-only file system …) the token is
    kept in memory for this process, a :class:`~commtel.oauth.TokenStoreWriteFailed`
    event is emitted (logged once as a warning) and :meth:`load` returns the kept token,
    so callers do not fetch a new token on every call; the next successful save ends it.

    Args:
        directory: Where the files go; created ``0700`` if missing.
        lock_timeout_s: How long :meth:`lock` waits for another process before
            raising :class:`~commtel.BackendError`.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Injective, length-safe file names; no symbolic links; private directories only;
       a failed write keeps the token in memory.
    """

    __slots__ = ("_directory", "_failing", "_file_locks", "_guard", "_lock_timeout_s", "_thread_locks", "_unsaved")

    def __init__(self, directory: str | os.PathLike[str], *, lock_timeout_s: float = 30.0) -> None:
        lock_timeout_s = check.duration(lock_timeout_s, "lock_timeout_s", owner="FileTokenStore", positive=True)
        self._directory = Path(directory)
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private(self._directory)
        self._lock_timeout_s = lock_timeout_s
        self._thread_locks = _KeyLocks()
        self._guard = threading.Lock()
        self._file_locks: dict[str, filelock.FileLock] = {}
        #: Tokens whose save failed, kept for this process until a save succeeds.
        self._unsaved: dict[str, Token] = {}
        #: Keys whose write failure was already reported.
        self._failing: set[str] = set()

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self._directory)!r})"

    def path(self, key: str) -> Path:
        """The file that holds *key*'s token: a readable prefix of the key and a hash of all of it.

        .. versionchanged:: 0.2.0
           Different keys always get different files, whatever their characters or length.
        """
        if not isinstance(key, str) or not key:
            msg = f"FileTokenStore: a token key must be a non-empty string, got {key!r}"
            raise ConfigurationError(msg)
        readable = _SAFE_KEY.sub("_", key)[:_READABLE].strip(".") or "key"
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self._directory / f"{readable}-{digest}.json"

    def load(self, key: str) -> Token | None:
        kept = self._unsaved.get(key)
        if kept is not None:
            return kept
        path = self.path(key)
        try:
            text = _read_no_follow(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                msg = f"token file for {key!r} ({path.name}) is a symbolic link; refusing to follow it (remove it)"
            else:
                msg = f"cannot read token file for {key!r}: {type(exc).__name__}"
            raise BackendError(msg) from exc
        try:
            return Token.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            # Only reachable if someone else wrote the file: our writes are atomic.
            msg = f"token file for {key!r} is not a saved token"
            raise BackendError(msg) from exc

    def save(self, key: str, token: Token) -> None:
        target = self.path(key)
        try:
            self._write(target, json.dumps(token.to_dict()).encode())
        except OSError as exc:
            self._unsaved[key] = token
            self._failed(key, exc)
            return
        self._unsaved.pop(key, None)
        if key in self._failing:
            self._failing.discard(key)
            _log.info("token store %s writes again; the token of %r is saved", self._directory, key)

    def _failed(self, key: str, exc: OSError) -> None:
        """Say once per key (until it writes again) that this store cannot write."""
        if key not in self._failing:
            self._failing.add(key)
            error = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            _emit(TokenStoreWriteFailed(store="file", key=key, error=error))

    def _write(self, target: Path, payload: bytes) -> None:
        # mkstemp creates the file 0600 (O_EXCL: never through a link) in the same directory,
        # so the rename is atomic; a rename replaces a link planted at *target*, never follows it.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self._directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            Path(tmp).replace(target)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise
        self._fsync_directory()

    def delete(self, key: str) -> None:
        self._unsaved.pop(key, None)
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
            self._fsync_directory()

    def lock(self, key: str) -> AbstractContextManager[None]:
        return self._cross_process_lock(key)

    @contextlib.contextmanager
    def _cross_process_lock(self, key: str) -> Iterator[None]:
        with self._guard:
            file_lock = self._file_locks.get(key)
            if file_lock is None:
                lock_path = self.path(key).with_suffix(".lock")
                if lock_path.is_symlink():
                    msg = f"lock file for {key!r} ({lock_path.name}) is a symbolic link; refusing to follow it (remove it)"
                    raise BackendError(msg)
                # thread_local=False: the async client acquires and releases in different threads;
                # threads of this process are kept apart by the thread lock below.
                file_lock = self._file_locks[key] = filelock.FileLock(
                    lock_path, timeout=self._lock_timeout_s, mode=0o600, thread_local=False
                )
        with self._thread_locks.get(key):
            try:
                file_lock.acquire()
            except filelock.Timeout as exc:
                msg = f"another process held the token lock for {key!r} over {self._lock_timeout_s}s"
                raise BackendError(msg) from exc
            except OSError as exc:
                # The lock file cannot be created (read-only, no inodes …): nothing this process
                # writes reaches other processes either, so the in-process lock is all that matters.
                self._failed(key, exc)
                yield
                return
            try:
                yield
            finally:
                file_lock.release()

    def _fsync_directory(self) -> None:
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_no_follow(path: Path) -> str:
    """The text of *path*, refusing a symbolic link at the last component (``ELOOP``)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "r", encoding="utf-8") as file:
        return file.read()


def _check_private(directory: Path) -> None:
    """Refuse a token directory that someone else owns or the group or others can write."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - POSIX permissions only
        return
    info = directory.stat()
    problems = []
    if info.st_uid != os.geteuid():
        problems.append(f"it is owned by uid {info.st_uid}, not by this process (uid {os.geteuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f"the group or others can write to it (mode {stat.S_IMODE(info.st_mode):#o})")
    if problems:
        msg = (
            f"FileTokenStore refuses {str(directory)!r}: {' and '.join(problems)}; anyone who can write there "
            f"can plant links or swap tokens. Use a directory of your own with mode 0700 (chmod 700 {directory})."
        )
        raise ConfigurationError(msg)


def _emit(event: TokenStoreWriteFailed) -> None:
    if listeners := _events.active_listeners():
        _events.emit(event, listeners)
