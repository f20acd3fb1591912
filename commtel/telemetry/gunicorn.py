"""gunicorn server hooks that keep commtel's multiprocess metrics right.

Put them in ``gunicorn.conf.py`` (with ``PROMETHEUS_MULTIPROC_DIR`` set for every process)::

    from commtel.telemetry.gunicorn import child_exit, on_starting

``on_starting`` empties the metrics directory when the server starts; ``child_exit`` tells
the metrics a worker died (:func:`commtel.telemetry.mark_process_dead`): its active tasks,
circuit states and token expiries stop counting, its counters are kept in one archive file.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Any

from .._exceptions import ConfigurationError
from ._multiprocess import clear_directory, mark_process_dead, multiprocess_dir


__all__ = ["child_exit", "on_starting"]


def on_starting(server: Any) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Start from an empty ``PROMETHEUS_MULTIPROC_DIR`` (runs once, in gunicorn's master).

    Raises:
        ConfigurationError: ``PROMETHEUS_MULTIPROC_DIR`` is not set.
    """
    if multiprocess_dir() is None:
        msg = (
            "PROMETHEUS_MULTIPROC_DIR is not set: gunicorn workers need a shared metrics directory "
            "(export PROMETHEUS_MULTIPROC_DIR=/path/to/an/empty/dir before starting gunicorn)"
        )
        raise ConfigurationError(msg)
    clear_directory()


def child_exit(server: Any, worker: Any) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """A worker exited (crashed, was killed or recycled): forget its live samples, keep its counts."""
    mark_process_dead(worker.pid)
