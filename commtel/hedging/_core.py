"""Sans-I/O latency quantile: log-spaced buckets over a sliding window of two halves.

``add(seconds, now)`` files a latency in one of ~330 buckets 5 % wide (100 µs to 10 min,
so the answer is within 5 % of the true quantile); ``value(now)`` answers from the current
and the previous half-window, so old latencies fade out after at most *window_s*. The
answer is cached and recomputed after every *refresh* new samples, so reading it on
every call costs a comparison.
"""

from __future__ import annotations

import math


__all__ = ["LatencyQuantile"]

_LOWEST_S = 1e-4
_GROWTH = 1.05
_BUCKETS = math.ceil(math.log(600.0 / _LOWEST_S) / math.log(_GROWTH)) + 1
_LOG_GROWTH = math.log(_GROWTH)


def _bucket(seconds: float) -> int:
    if seconds <= _LOWEST_S:
        return 0
    return min(_BUCKETS - 1, int(math.log(seconds / _LOWEST_S) / _LOG_GROWTH) + 1)


def _upper(bucket: int) -> float:
    """The upper edge of *bucket* (the value reported for a quantile falling in it)."""
    return _LOWEST_S * _GROWTH**bucket


class LatencyQuantile:
    """The *quantile* of the latencies added within the last *window_s* (``None`` below *min_samples*).

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_cached",
        "_current",
        "_epoch",
        "_fresh",
        "_half_s",
        "_previous",
        "_total",
        "min_samples",
        "quantile",
        "refresh",
    )

    def __init__(
        self, quantile: float = 0.95, *, window_s: float = 60.0, min_samples: int = 20, refresh: int = 8
    ) -> None:
        self.quantile = quantile
        self.min_samples = min_samples
        self.refresh = refresh
        self._half_s = window_s / 2
        self._current = [0] * _BUCKETS
        self._previous = [0] * _BUCKETS
        self._epoch = 0
        self._total = 0  # samples in both halves
        self._fresh = 0  # samples since the cached value was computed
        self._cached: float | None = None

    def _rotate(self, now: float) -> None:
        epoch = int(now / self._half_s)
        if epoch == self._epoch:
            return
        if epoch == self._epoch + 1:
            self._previous, self._current = self._current, self._previous
            self._total -= sum(self._current)
            self._current[:] = [0] * _BUCKETS
        else:  # idle for a whole window: forget everything
            self._previous = [0] * _BUCKETS
            self._current = [0] * _BUCKETS
            self._total = 0
        self._epoch = epoch
        self._fresh = self.refresh  # recompute on the next read

    def add(self, seconds: float, now: float) -> None:
        """File one latency observed at *now*."""
        self._rotate(now)
        self._current[_bucket(seconds)] += 1
        self._total += 1
        self._fresh += 1

    def value(self, now: float) -> float | None:
        """The quantile in seconds (within 5 %), or ``None`` while fewer than *min_samples* are known."""
        self._rotate(now)
        if self._total < self.min_samples:
            return None
        if self._cached is None or self._fresh >= self.refresh:
            self._cached = self._compute()
            self._fresh = 0
        return self._cached

    def _compute(self) -> float:
        rank = self.quantile * self._total
        seen = 0
        current, previous = self._current, self._previous
        for bucket in range(_BUCKETS):
            seen += current[bucket] + previous[bucket]
            if seen >= rank:
                return _upper(bucket)
        return _upper(_BUCKETS - 1)
