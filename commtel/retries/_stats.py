"""In-process retry statistics per operation (:func:`get_retry_stats_summary` and ``_detailed``).

Counters are plain integers bumped by the policies (single bytecode increments under the
GIL); they are a convenience view, the Prometheus metrics are the durable record.
"""

from __future__ import annotations

import threading

from typing import Any


__all__ = ["RetryStats", "get_retry_stats_detailed", "get_retry_stats_summary", "reset_retry_stats", "stats_for"]


class RetryStats:
    """Running totals of one operation's calls through retry policies.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("after_retry", "backoff_s", "budget_denied", "exhausted", "first_try", "not_retryable", "retries")

    def __init__(self) -> None:
        self.first_try = 0
        self.after_retry = 0
        self.exhausted = 0
        self.not_retryable = 0
        self.retries = 0
        self.budget_denied = 0
        self.backoff_s = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Totals plus ``success_rate`` in percent and ``total_attempts`` (first tries + retries)."""
        calls = self.first_try + self.after_retry + self.exhausted + self.not_retryable
        successes = self.first_try + self.after_retry
        return {
            "total_calls": calls,
            "total_attempts": calls + self.retries,
            "successes": successes,
            "failures": self.exhausted + self.not_retryable,
            "success_first_try": self.first_try,
            "success_after_retry": self.after_retry,
            "exhausted": self.exhausted,
            "not_retryable": self.not_retryable,
            "retries": self.retries,
            "budget_denied": self.budget_denied,
            "total_backoff_s": round(self.backoff_s, 6),
            "success_rate": 100.0 * successes / calls if calls else 0.0,
        }


_lock = threading.Lock()
_stats: dict[str, RetryStats] = {}


def stats_for(operation: str) -> RetryStats:
    """The shared :class:`RetryStats` of *operation*, created on first use."""
    with _lock:
        found = _stats.get(operation)
        if found is None:
            found = _stats[operation] = RetryStats()
        return found


def get_retry_stats_summary() -> dict[str, Any]:
    """Retry statistics summed over every operation.

    Returns:
        ``total_calls``, ``total_attempts``, ``successes``, ``failures``,
        ``success_first_try``, ``success_after_retry``, ``exhausted``, ``not_retryable``,
        ``retries``, ``budget_denied``, ``total_backoff_s``, ``success_rate`` (percent)
        and ``operations`` (how many operations were seen).

    .. versionadded:: 0.1.0
    """
    total = RetryStats()
    with _lock:
        every = list(_stats.values())
    for one in every:
        for name in RetryStats.__slots__:
            setattr(total, name, getattr(total, name) + getattr(one, name))
    return {**total.as_dict(), "operations": len(every)}


def get_retry_stats_detailed() -> dict[str, Any]:
    """The summary plus a per-operation breakdown.

    Returns:
        ``{"summary": <get_retry_stats_summary()>, "operations": {name: {...}}}``.

    .. versionadded:: 0.1.0
    """
    with _lock:
        per_op = {name: stats.as_dict() for name, stats in sorted(_stats.items())}
    return {"summary": get_retry_stats_summary(), "operations": per_op}


def reset_retry_stats() -> None:
    """Zero every operation's statistics (policies keep working).

    .. versionadded:: 0.1.0
    """
    with _lock:
        for stats in _stats.values():
            stats.__init__()  # type: ignore[misc]
