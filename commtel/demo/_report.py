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

    def __call__(self, event: Event, /) -> None:
        from ._events_map import tally_event

        tally_event(self, event)

    def table(self, title: str = "commtel demo") -> Table:
        """The per-platform summary as a rich table."""
        table = Table(title=title)
        for column in ("platform", "calls", "errors", "throttled", "retries", "breaker trips", "p50 ms", "p99 ms"):
            table.add_column(column, justify="left" if column == "platform" else "right")
        with self._lock:
            for name, t in sorted(self.platforms.items()):
                table.add_row(
                    name,
                    str(t.calls),
                    str(t.errors),
                    str(t.throttled),
                    str(t.retries),
                    str(t.breaker_trips),
                    f"{t.percentile(0.5) * 1000:.1f}",
                    f"{t.percentile(0.99) * 1000:.1f}",
                )
        return table

    def line(self) -> str:
        """One plain progress line (non-TTY output)."""
        with self._lock:
            parts = [
                f"{n}: {t.calls} calls/{t.throttled} thr/{t.retries} rty/{t.breaker_trips} trips"
                for n, t in sorted(self.platforms.items())
            ]
            extra = [f"{k}={v}" for k, v in sorted(self.counters.items())]
        return " | ".join(parts + extra)

    def print_summary(self, console: Console) -> None:
        """Print the final table and counters."""
        console.print(self.table("commtel demo — summary per platform"))
        with self._lock:
            if self.counters:
                console.print("  ".join(f"{k}: {v}" for k, v in sorted(self.counters.items())))
