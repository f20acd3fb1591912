"""Multiprocess metrics (gunicorn and other pre-fork servers): a consistent view of live workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its samples to its own files
in that directory and a scrape merges them. Two things need the server's help:

- When a worker dies, :func:`mark_process_dead` removes its live-mode gauge files (active
  tasks, circuit state, token expiry stop counting it) and folds its counters and
  histograms into one archive file per type, so totals never go backwards and the
  directory does not grow with every dead worker.
- Folding and reading exclude each other through a lock file in the directory: a scrape
  through :func:`locked_registry` never sees a dead worker's samples twice or not at all.
"""

from __future__ import annotations

import contextlib
import os

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, mmap_dict, multiprocess
from prometheus_client.multiprocess import MultiProcessCollector


__all__ = ["clear_directory", "locked_registry", "mark_process_dead", "multiprocess_dir"]

# prometheus_client's multiprocess internals are untyped.
_MmapedDict: Any = mmap_dict.MmapedDict
_remove_live_gauges: Any = multiprocess.mark_process_dead
_LOCK = ".commtel.lock"
# Per-process files whose samples add up across processes: folded into one archive each.
_SUMMED = ("counter", "histogram", "summary")


def multiprocess_dir() -> Path | None:
    """``PROMETHEUS_MULTIPROC_DIR`` as a path (``None`` when unset: single-process mode)."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


@contextlib.contextmanager
def _locked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    import fcntl  # POSIX only, like the pre-fork servers that need multiprocess mode

    with (directory / _LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fold(directory: Path, kind: str, dead: Path) -> None:
    """Add the samples of *dead* (one dead process's file) into *kind*'s archive, then delete *dead*."""
    archive = directory / f"{kind}_archive.db"
    totals: dict[str, float] = {}
    for source in (archive, dead):
        if source.exists():
            for key, value, _timestamp, _pos in _MmapedDict.read_all_values_from_file(str(source)):
                totals[key] = totals.get(key, 0.0) + value
    staging = directory / f"{kind}_archive.db.new"  # not *.db: no scrape reads it
    merged = _MmapedDict(str(staging))
    try:
        for key, value in totals.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    staging.replace(archive)
    dead.unlink()


def mark_process_dead(pid: int, path: str | os.PathLike[str] | None = None) -> None:
    """Forget dead process *pid*: drop its live gauges, fold its counters and histograms into the archive.

    Call it from the server's hook for a worker that exited (gunicorn: ``child_exit`` in
    ``commtel.telemetry.gunicorn``), never for a process that still runs.

    Args:
        pid: The dead worker's process id.
        path: The multiprocess directory (default ``PROMETHEUS_MULTIPROC_DIR``).

    .. versionadded:: 0.1.0
    """
    directory = Path(path) if path is not None else multiprocess_dir()
    if directory is None:
        return
    with _locked(directory, exclusive=True):
        _remove_live_gauges(pid, str(directory))
        for kind in _SUMMED:
            dead = directory / f"{kind}_{pid}.db"
            if dead.exists():
                _fold(directory, kind, dead)


def clear_directory(path: str | os.PathLike[str] | None = None) -> None:
    """Delete every metrics file of the multiprocess directory (a server starts from zero).

    .. versionadded:: 0.1.0
    """
    directory = Path(path) if path is not None else multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory, exclusive=True):
        for stale in directory.glob("*.db"):
            stale.unlink()


class _LockedCollector(MultiProcessCollector):
    """prometheus_client's collector, reading the files under the directory's shared lock."""

    def collect(self) -> Iterable[Any]:
        directory = Path(self._path)
        with _locked(directory, exclusive=False):
            return list(super().collect())  # type: ignore[no-untyped-call]


def locked_registry(path: str | os.PathLike[str]) -> CollectorRegistry:
    """A registry that merges every process's files in *path*, consistent with :func:`mark_process_dead`.

    .. versionadded:: 0.1.0
    """
    registry = CollectorRegistry()
    _LockedCollector(registry, str(path))  # type: ignore[no-untyped-call]
    return registry
