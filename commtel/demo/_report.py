"""Demo statistics per platform, the live terminal view and the final summary table."""

from __future__ import annotations

import threading

from collections import defaultdict
from dataclasses import dataclass, field

from .._events import Event
from .._optional import requires


with requires("rich"):
    from rich.console import Console
    from rich.table import Table


__all__ = ["DemoStats", "PlatformTally"]

_FIELDS = ("calls", "errors", "throttled", "retries", "breaker_trips")


@dataclass(slots=True)
class PlatformTally:
    """What happened on one platform during the demo."""

    calls: int = 0
    errors: int = 0
    throttled: int = 0
    retries: int = 0
    breaker_trips: int = 0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """The *q* quantile of call latencies in seconds (0 when none)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DemoStats:
    """Counts calls and latencies per platform; also a listener that counts policy events.

    Being a plain listener shows the event mechanism: the demo's own table is fed by
    the same events that drive the Prometheus metrics and span events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.platforms: dict[str, PlatformTally] = defaultdict(PlatformTally)
        self.counters: dict[str, int] = defaultdict(int)
        self.breakers: dict[str, str] = {}
        self._notes: list[str] = []
        self._shown: dict[str, int] = {}

    def record_call(self, platform: str, seconds: float, *, ok: bool) -> None:
        """One finished call."""
        with self._lock:
            tally = self.platforms[platform]
            tally.calls += 1
            tally.errors += not ok
            if len(tally.latencies) < 200_000:
                tally.latencies.append(seconds)

    def count(self, platform: str, what: str, n: int = 1) -> None:
        """Add *n* to a per-platform tally field (throttled, retries, breaker_trips)."""
        with self._lock:
            tally = self.platforms[platform]
            setattr(tally, what, getattr(tally, what) + n)

    def bump(self, name: str, n: int = 1) -> None:
        """Add *n* to a free-form counter (messages completed, tasks finished …)."""
        with self._lock:
            self.counters[name] += n

    def note(self, text: str) -> None:
        """Something that happened once (a drill ended, a breaker changed state): shown as it happens."""
        with self._lock:
            self._notes.append(text)

    def breaker_changed(self, breaker: str, from_state: str | None, to_state: str) -> None:
        """Track *breaker*'s state (and note the change)."""
        with self._lock:
            self.breakers[breaker] = to_state
            if from_state is not None:
                self._notes.append(f"breaker {breaker}: {from_state} -> {to_state}")

    def notes(self) -> list[str]:
        """The notes since the last call."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def changes(self) -> str | None:
        """What changed since the last call, in one plain line (``None``: nothing did)."""
        with self._lock:
            now = {f"{n}: {field}": getattr(t, field) for n, t in self.platforms.items() for field in _FIELDS}
            now.update(self.counters)
        parts = [
            f"{name} +{value - self._shown.get(name, 0)}"
            for name, value in sorted(now.items())
            if value != self._shown.get(name, 0)
        ]
        self._shown = now
        return " | ".join(parts) or None

    def __call__(self, event: Event, /) -> None:
        from ._events_map import tally_event

        tally_event(self, event)

    def table(self, title: str = "commtel demo") -> Table:
        """The per-platform summary as a rich table."""
        table = Table(title=title)
        columns = (
            "platform",
            "calls",
            "errors",
            "throttled",
            "retries",
            "breaker trips",
            "breaker",
            "p50 ms",
            "p99 ms",
        )
        for column in columns:
            table.add_column(column, justify="left" if column in {"platform", "breaker"} else "right")
        with self._lock:
            for name, t in sorted(self.platforms.items()):
                table.add_row(
                    name,
                    str(t.calls),
                    str(t.errors),
                    str(t.throttled),
                    str(t.retries),
                    str(t.breaker_trips),
                    self.breakers.get(name, ""),
                    f"{t.percentile(0.5) * 1000:.1f}",
                    f"{t.percentile(0.99) * 1000:.1f}",
                )
        return table

    def print_summary(self, console: Console) -> None:
        """Print the final table and counters."""
        console.print(self.table("commtel demo — summary per platform"))
        with self._lock:
            if self.counters:
                console.print("  ".join(f"{k}: {v}" for k, v in sorted(self.counters.items())))
