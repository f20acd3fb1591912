"""Sans-I/O rate-limiting strategies: pure functions of a key's state and ``now``.

Nothing here reads a clock, sleeps, locks or does I/O. A :class:`Quota` is the
compiled set of limits one key must satisfy at once; its :meth:`Quota.decide`
takes the key's current state (``None`` for a fresh key) and ``now`` in seconds
and returns the new state and a :class:`RateLimitDecision`. Stores (in-memory, Redis)
keep the state; drivers (``try_acquire``/``acquire``/``aacquire``) read the clock
and sleep. A rejected request never changes the state of any limit.

Guarantees (``cost`` units per request, any arrival sequence):

* :class:`TokenBucket` (GCRA form): in every interval of length *t* at most
  ``burst + rate * t`` units are admitted.
* :class:`SlidingWindow` (exact log): in every window ``[a, a + window_s)`` at
  most ``limit`` units are admitted, with no boundary bursts.
"""

# ruff: noqa: FBT003 - RateLimitDecision(True/False, ...) and commit flags are positional on the hot path
from __future__ import annotations

import math

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from .. import _validation as check
from .._exceptions import ConfigurationError


__all__ = ["Limit", "Quota", "RateLimitDecision", "SlidingWindow", "TokenBucket", "compile_quota", "merge"]

# Admission tolerance (seconds) so that waiting exactly ``retry_after_s`` admits despite
# float rounding; it lets a bucket admit at most ``rate * 1e-9`` units early.
_EPS = 1e-9


class RateLimitDecision:
    """The outcome of one rate-limit decision; truthy when the request was admitted.

    Attributes:
        allowed: Whether the request was admitted (and its cost consumed).
        retry_after_s: Seconds until the same request would be admitted (``0.0`` if allowed).
        remaining: Units still available right after this decision (of the binding limit).
        limit: Capacity of the binding limit (the one with the fewest units remaining).
        reset_s: Seconds until every limit of the key is back to full capacity.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("allowed", "limit", "remaining", "reset_s", "retry_after_s")

    def __init__(self, allowed: bool, retry_after_s: float, remaining: int, limit: int, reset_s: float) -> None:  # noqa: FBT001 - a hot-path record, built positionally
        self.allowed: Final = allowed
        self.retry_after_s: Final = retry_after_s
        self.remaining: Final = remaining
        self.limit: Final = limit
        self.reset_s: Final = reset_s

    def __bool__(self) -> bool:
        return self.allowed

    def _astuple(self) -> tuple[bool, float, int, int, float]:
        return (self.allowed, self.retry_after_s, self.remaining, self.limit, self.reset_s)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RateLimitDecision):
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return (
            f"RateLimitDecision(allowed={self.allowed}, retry_after_s={self.retry_after_s:.6g}, "
            f"remaining={self.remaining}, limit={self.limit}, reset_s={self.reset_s:.6g})"
        )

    def as_info(self) -> dict[str, Any]:
        """The decision as a plain dict (allowed, retry_after_s, remaining, limit, reset_s).

        .. versionadded:: 0.1.0
        """
        return {
            "allowed": self.allowed,
            "retry_after_s": self.retry_after_s,
            "remaining": self.remaining,
            "limit": self.limit,
            "reset_s": self.reset_s,
        }


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A smooth limit: *rate* units per second with bursts of up to *burst* units.

    Guarantee: in every interval of length *t* at most ``burst + rate * t`` units
    are admitted. Implemented as GCRA, so a key's state is one float.

    Args:
        rate: Units refilled per second (``300 / 900`` for 300 per 15 minutes).
        burst: Bucket capacity: the most units admitted at once after idling.

    Raises:
        ConfigurationError: *rate* is not a positive number or *burst* not a positive integer.

    .. versionadded:: 0.1.0
    """

    rate: float
    burst: int

    def __post_init__(self) -> None:
        rate = check.number(self.rate, "rate", owner="TokenBucket", strict=True)
        if not math.isfinite(1.0 / rate):  # a denormal: its refill interval overflows
            msg = f"TokenBucket.rate must be a positive finite number whose inverse is finite, got {rate!r}"
            raise ConfigurationError(msg)
        check.whole(self.burst, "burst", owner="TokenBucket")


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """An exact quota: at most *limit* units in any window of *window_s* seconds.

    Guarantee: for every ``a``, the units admitted in ``[a, a + window_s)`` never
    exceed *limit* (no double burst at a window edge, unlike a fixed window).
    The state is the log of admitted timestamps, bounded by *limit* entries.

    Args:
        limit: Units allowed per window.
        window_s: Window length in seconds.

    Raises:
        ConfigurationError: *limit* is not a positive integer or *window_s* not positive.

    .. versionadded:: 0.1.0
    """

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        check.whole(self.limit, "limit", owner="SlidingWindow")
        check.number(self.window_s, "window_s", owner="SlidingWindow", strict=True)


Limit: TypeAlias = TokenBucket | SlidingWindow


def merge(first: RateLimitDecision, second: RateLimitDecision) -> RateLimitDecision:
    """Combine two parts of one decision: allowed only if both are; the tighter limit binds.

    On a refusal only refusing parts bind (an admitting part reports units as if it had
    consumed them, which a refusal does not). Ties keep *first*, so merging left to right
    over the parts is order-stable.
    """
    if first.allowed is not second.allowed:
        binding = first if second.allowed else second
    else:
        binding = second if second.remaining < first.remaining else first
    return RateLimitDecision(
        first.allowed and second.allowed,
        max(first.retry_after_s, second.retry_after_s),
        binding.remaining,
        binding.limit,
        max(first.reset_s, second.reset_s),
    )


class Quota:
    """Compiled limits for one key; :meth:`decide` is the whole state machine.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("capacity", "horizon_s", "limits")

    limits: tuple[Limit, ...]
    #: Largest cost one request may have (the smallest burst or window limit).
    capacity: int
    #: Seconds after its last admission by which a key's state is back to fresh.
    horizon_s: float

    def decide(self, state: Any, now: float, cost: int, commit: bool = True) -> tuple[Any, RateLimitDecision]:  # noqa: FBT001, FBT002 - hot path, positional
        """Decide on *cost* units at *now*; return the state to store and the decision.

        With ``commit=False`` (a peek) the returned state is the input state.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Quota({', '.join(map(repr, self.limits))})"


class _BucketQuota(Quota):
    """GCRA: the state is the theoretical arrival time (``None`` or a past time = full bucket)."""

    __slots__ = ("_admit_ahead", "_burst", "_interval", "_rate", "_tau")

    def __init__(self, bucket: TokenBucket) -> None:
        self.limits = (bucket,)
        self._rate = float(bucket.rate)
        self._burst = bucket.burst
        self._interval = 1.0 / self._rate
        self._tau = bucket.burst * self._interval
        # The furthest ahead of now a request may push the arrival time and still be admitted.
        self._admit_ahead = self._tau + _EPS
        self.capacity = bucket.burst
        self.horizon_s = self._tau

    def decide(self, state: Any, now: float, cost: int, commit: bool = True) -> tuple[Any, RateLimitDecision]:  # noqa: FBT001, FBT002 - hot path, positional
        tat = now if state is None or state < now else state
        new = tat + cost * self._interval
        ahead = new - now
        if ahead > self._admit_ahead:
            return state, RateLimitDecision(
                False,
                ahead - self._tau,
                max(0, int(self._burst - (tat - now) * self._rate + _EPS)),
                self._burst,
                tat - now,
            )
        # ahead <= tau + eps, so the remainder is >= -eps * rate and int() truncates it to >= 0.
        return (new if commit else state), RateLimitDecision(
            True,
            0.0,
            int(self._burst - ahead * self._rate + _EPS),
            self._burst,
            ahead,
        )


class _Log:
    """Admitted timestamps (one per unit), oldest first; entries before *head* are expired."""

    __slots__ = ("head", "times")

    def __init__(self) -> None:
        self.head = 0
        self.times: list[float] = []


class _WindowQuota(Quota):
    """Exact sliding windows over one log of admitted timestamps.

    Expired entries are skipped by moving ``head`` and compacted only when they are
    the majority, so a decision costs O(log n) whatever the traffic on the key.
    """

    __slots__ = ("_longest", "_windows")

    def __init__(self, windows: Sequence[SlidingWindow]) -> None:
        ordered = sorted(windows, key=lambda w: (w.window_s, w.limit))
        self.limits = tuple(ordered)
        self._windows = tuple((w.limit, float(w.window_s)) for w in ordered)
        self._longest = self._windows[-1][1]
        self.capacity = min(w.limit for w in ordered)
        self.horizon_s = self._longest

    def decide(self, state: Any, now: float, cost: int, commit: bool = True) -> tuple[Any, RateLimitDecision]:  # noqa: FBT001, FBT002 - hot path, positional
        log: _Log = _Log() if state is None else state
        times = log.times
        head = log.head
        size = len(times)
        if size > head and times[head] <= now - self._longest:  # entries before head left every window
            head = bisect_right(times, now - self._longest, head)
            if head > 16 and head * 2 > size:
                del times[:head]
                size -= head
                head = 0
            log.head = head
        allowed = True
        retry = 0.0
        remaining = limit = refused_remaining = refused_limit = -1
        longest = self._longest
        for window_limit, window_s in self._windows:
            start = head if window_s == longest else bisect_right(times, now - window_s, head)
            free = window_limit - (size - start) - cost
            if free < 0:
                allowed = False
                # The window admits once the -free oldest units in it have left
                # (never, if cost alone exceeds the limit: drivers reject that earlier).
                oldest_needed = start - free - 1
                wait = times[oldest_needed] + window_s - now if oldest_needed < size else math.inf
                retry = max(retry, wait)
                free = max(0, free + cost)
                if refused_limit < 0 or free < refused_remaining:
                    refused_remaining, refused_limit = free, window_limit
            elif limit < 0 or free < remaining:
                remaining, limit = free, window_limit
        if not allowed:  # only refusing windows bind a refusal (see merge)
            return state, RateLimitDecision(
                False, retry, refused_remaining, refused_limit, times[-1] + longest - now if size > head else 0.0
            )
        # Never store a time before the newest entry: keeps the log sorted when a caller's
        # clock reading is slightly older than another's (and only keeps units longer).
        stamp = times[-1] if size > head and times[-1] > now else now
        if not commit:
            return state, RateLimitDecision(True, 0.0, remaining, limit, stamp + longest - now)
        if cost == 1:
            times.append(stamp)
        else:
            times.extend([stamp] * cost)
        return log, RateLimitDecision(True, 0.0, remaining, limit, stamp + longest - now)


class _OneWindowQuota(_WindowQuota):
    """:class:`_WindowQuota` specialised for a single window (the common case), without the loop."""

    __slots__ = ("_limit",)

    def __init__(self, window: SlidingWindow) -> None:
        super().__init__([window])
        self._limit = window.limit

    def decide(self, state: Any, now: float, cost: int, commit: bool = True) -> tuple[Any, RateLimitDecision]:  # noqa: FBT001, FBT002 - hot path, positional
        log: _Log = _Log() if state is None else state
        times = log.times
        window = self._longest
        head = log.head
        size = len(times)
        if size > head and times[head] <= now - window:  # something expired: O(log n), else O(1)
            head = bisect_right(times, now - window, head)
            if head > 16 and head * 2 > size:
                del times[:head]
                size -= head
                head = 0
            log.head = head
        free = self._limit - (size - head) - cost
        if free < 0:
            needed = head - free - 1
            retry = times[needed] + window - now if needed < size else math.inf
            return state, RateLimitDecision(
                False, retry, max(0, free + cost), self._limit, times[-1] + window - now if size > head else 0.0
            )
        stamp = times[-1] if size > head and times[-1] > now else now
        if commit:
            if cost == 1:
                times.append(stamp)
            else:
                times.extend([stamp] * cost)
            state = log
        return state, RateLimitDecision(True, 0.0, free, self._limit, stamp + window - now)


class _MixedState:
    """State of a quota with both a bucket and windows."""

    __slots__ = ("log", "tat")

    def __init__(self, tat: float | None, log: _Log | None) -> None:
        self.tat = tat
        self.log = log


class _MixedQuota(Quota):
    """A token bucket and sliding windows on the same key, all holding at once."""

    __slots__ = ("_bucket", "_windows")

    def __init__(self, bucket: TokenBucket, windows: Sequence[SlidingWindow]) -> None:
        self._bucket = _BucketQuota(bucket)
        self._windows = _WindowQuota(windows)
        self.limits = (bucket, *self._windows.limits)
        self.capacity = min(self._bucket.capacity, self._windows.capacity)
        self.horizon_s = max(self._bucket.horizon_s, self._windows.horizon_s)

    def decide(self, state: Any, now: float, cost: int, commit: bool = True) -> tuple[Any, RateLimitDecision]:  # noqa: FBT001, FBT002 - hot path, positional
        mixed = _MixedState(None, None) if state is None else state
        _, bucket = self._bucket.decide(mixed.tat, now, cost, False)
        _, windows = self._windows.decide(mixed.log, now, cost, False)
        decision = merge(bucket, windows)
        if not decision.allowed or not commit:
            return state, decision
        mixed.tat, bucket = self._bucket.decide(mixed.tat, now, cost)
        mixed.log, windows = self._windows.decide(mixed.log, now, cost)
        return mixed, merge(bucket, windows)


def compile_quota(limits: Sequence[Limit]) -> Quota:
    """Compile *limits* (at most one :class:`TokenBucket`, any windows) into a :class:`Quota`.

    Raises:
        ConfigurationError: No limits, more than one bucket, or an object that is not a limit.

    .. versionadded:: 0.1.0
    """
    buckets = [limit for limit in limits if isinstance(limit, TokenBucket)]
    windows = [limit for limit in limits if isinstance(limit, SlidingWindow)]
    if len(buckets) + len(windows) != len(limits):
        bad = next(limit for limit in limits if not isinstance(limit, (TokenBucket, SlidingWindow)))
        msg = f"limits must be TokenBucket or SlidingWindow objects, got {bad!r}"
        raise ConfigurationError(msg)
    if not limits:
        msg = "limits must name at least one TokenBucket or SlidingWindow"
        raise ConfigurationError(msg)
    if len(buckets) > 1:
        msg = f"limits may hold at most one TokenBucket, got {len(buckets)}"
        raise ConfigurationError(msg)
    if not windows:
        return _BucketQuota(buckets[0])
    if not buckets:
        return _OneWindowQuota(windows[0]) if len(windows) == 1 else _WindowQuota(windows)
    return _MixedQuota(buckets[0], windows)
