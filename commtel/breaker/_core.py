"""The sans-I/O circuit-breaker state machine and its failure windows.

``admit(now)`` returns a ticket (the state's generation) or :data:`REJECTED`;
``record(ticket, outcome, now)`` folds an outcome in and may trip, close or ask for a
health check. Outcomes of calls admitted under an older generation (before the last
transition) are ignored, so a slow call admitted while closed cannot close a breaker
that opened meanwhile. The caller serialises access (a lock, or Redis for the shared
variant) and never holds it while the protected call runs.
"""

from __future__ import annotations

from typing import Final


__all__ = [
    "CLOSED",
    "FAILURE",
    "HALF_OPEN",
    "IGNORED",
    "OPEN",
    "REJECTED",
    "SLOW",
    "SUCCESS",
    "BreakerCore",
    "CountWindow",
    "TimeWindow",
]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
SUCCESS: Final = "success"
FAILURE: Final = "failure"
SLOW: Final = "slow"
IGNORED: Final = "ignored"
REJECTED: Final = -1
# While probes are in flight we cannot know when the breaker decides; callers hear this.
_PROBING_RETRY_AFTER_S = 1.0


class CountWindow:
    """The last *size* outcomes (ring buffer) with a running failure count."""

    __slots__ = ("_index", "_ring", "calls", "failures")

    def __init__(self, size: int) -> None:
        self._ring = [False] * size
        self._index = 0
        self.calls = 0
        self.failures = 0

    def add(self, failed: bool, now: float) -> None:  # noqa: ARG002, FBT001 - same shape as TimeWindow.add
        """Add one outcome, evicting the oldest when full."""
        ring = self._ring
        if self.calls == len(ring):
            self.failures -= ring[self._index]
        else:
            self.calls += 1
        ring[self._index] = failed
        self.failures += failed
        self._index = (self._index + 1) % len(ring)

    def counts(self, now: float) -> tuple[int, int]:  # noqa: ARG002 - same shape as TimeWindow.counts
        """``(calls, failures)`` in the window."""
        return self.calls, self.failures

    def clear(self) -> None:
        """Forget every outcome."""
        self.__init__(len(self._ring))  # type: ignore[misc]


class TimeWindow:
    """Outcomes of the last *seconds*, in *buckets* slots."""

    __slots__ = ("_calls", "_epochs", "_failures", "_width")

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self._width = seconds / buckets
        self._epochs = [-1] * buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets

    def add(self, failed: bool, now: float) -> None:  # noqa: FBT001 - hot path, positional
        """Add one outcome at *now*."""
        epoch = int(now / self._width)
        slot = epoch % len(self._epochs)
        if self._epochs[slot] != epoch:
            self._epochs[slot] = epoch
            self._calls[slot] = self._failures[slot] = 0
        self._calls[slot] += 1
        self._failures[slot] += failed

    def counts(self, now: float) -> tuple[int, int]:
        """``(calls, failures)`` within the window ending at *now*."""
        oldest = int(now / self._width) - len(self._epochs)
        calls = failures = 0
        for slot, epoch in enumerate(self._epochs):
            if epoch > oldest:
                calls += self._calls[slot]
                failures += self._failures[slot]
        return calls, failures

    def clear(self) -> None:
        """Forget every outcome."""
        n = len(self._epochs)
        self._epochs, self._calls, self._failures = [-1] * n, [0] * n, [0] * n


class BreakerCore:
    """Closed → open → half-open → closed, decided from outcomes and ``now``; no I/O, no lock.

    Transitions are appended to :attr:`changes` as ``(from_state, to_state, reason)`` for
    the driver to publish after it released its lock.
    """

    __slots__ = (
        "_probes",
        "_probes_ok",
        "changes",
        "checking",
        "consecutive",
        "failure_rate_threshold",
        "failure_threshold",
        "forced",
        "generation",
        "half_open_max_calls",
        "has_health_check",
        "minimum_calls",
        "opened_at",
        "recovery_s",
        "state",
        "window",
    )

    def __init__(
        self,
        *,
        failure_threshold: int | None,
        failure_rate_threshold: float | None,
        window: CountWindow | TimeWindow | None,
        minimum_calls: int,
        recovery_s: float,
        half_open_max_calls: int,
        has_health_check: bool,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.failure_rate_threshold = failure_rate_threshold
        self.window = window
        self.minimum_calls = minimum_calls
        self.recovery_s = recovery_s
        self.half_open_max_calls = half_open_max_calls
        self.has_health_check = has_health_check
        self.state: str = CLOSED
        self.generation = 0
        self.opened_at = 0.0
        self.forced = False
        self.checking = False
        self.consecutive = 0
        self._probes = 0
        self._probes_ok = 0
        self.changes: list[tuple[str, str, str]] = []

    def admit(self, now: float) -> int:
        """A ticket for a call starting at *now*, or :data:`REJECTED`."""
        if self.state is CLOSED:
            return self.generation
        if self.state is OPEN:
            if self.forced or now - self.opened_at < self.recovery_s:
                return REJECTED
            self._move(HALF_OPEN, "recovery timeout elapsed", now)
        if self.checking or self._probes >= self.half_open_max_calls:
            return REJECTED
        self._probes += 1
        return self.generation

    def retry_after(self, now: float) -> float:
        """Seconds until a rejected call could be admitted (an estimate while probing)."""
        if self.state is OPEN and not self.forced:
            return max(0.0, self.opened_at + self.recovery_s - now)
        if self.state is OPEN:
            return self.recovery_s
        return min(self.recovery_s, _PROBING_RETRY_AFTER_S)

    def record(self, ticket: int, outcome: str, now: float) -> bool:
        """Fold in the *outcome* of the call holding *ticket*; True = run the health check now."""
        if ticket != self.generation or (outcome is IGNORED and self.state is not HALF_OPEN):
            return False
        failed = outcome is FAILURE or outcome is SLOW
        if self.state is CLOSED:
            self.consecutive = self.consecutive + 1 if failed else 0
            if self.window is not None:
                self.window.add(failed, now)
            if failed:
                self._trip_if_due(now)
            return False
        return self.state is HALF_OPEN and self._probe_done(outcome, now)

    def _probe_done(self, outcome: str, now: float) -> bool:
        if outcome is IGNORED:
            self._probes -= 1
            return False
        if outcome is not SUCCESS:
            self._move(OPEN, "probe failed", now)
            return False
        self._probes_ok += 1
        if self._probes_ok < self.half_open_max_calls:
            return False
        if self.has_health_check:
            self.checking = True
            return True
        self._move(CLOSED, "probes succeeded", now)
        return False

    def health_checked(self, ticket: int, *, healthy: bool, now: float) -> None:
        """Result of the health check asked for by :meth:`record`."""
        if ticket == self.generation and self.state is HALF_OPEN and self.checking:
            self._move(CLOSED if healthy else OPEN, "health check passed" if healthy else "health check failed", now)

    def force_open(self, now: float) -> None:
        """Open and stay open until :meth:`reset`."""
        if self.state is not OPEN:
            self._move(OPEN, "forced open", now)
        self.forced = True

    def reset(self, now: float) -> None:
        """Close and forget every failure."""
        self.forced = False
        if self.state is not CLOSED:
            self._move(CLOSED, "reset", now)
        self.consecutive = 0
        if self.window is not None:
            self.window.clear()

    def _trip_if_due(self, now: float) -> None:
        if self.failure_threshold is not None and self.consecutive >= self.failure_threshold:
            self._move(OPEN, f"{self.consecutive} consecutive failures", now)
            return
        if self.window is not None and self.failure_rate_threshold is not None:
            calls, failures = self.window.counts(now)
            if calls >= self.minimum_calls and failures >= self.failure_rate_threshold * calls:
                self._move(OPEN, f"failure rate {failures}/{calls}", now)

    def _move(self, to: str, reason: str, now: float) -> None:
        self.changes.append((self.state, to, reason))
        self.state = to
        self.generation += 1
        self.checking = False
        self._probes = self._probes_ok = 0
        if to is OPEN:
            self.opened_at = now
        elif to is CLOSED:
            self.consecutive = 0
            if self.window is not None:
                self.window.clear()
