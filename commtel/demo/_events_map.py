"""Which policy events the demo's summary counts (filled in as components land)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._events import Event


if TYPE_CHECKING:
    from ._report import DemoStats


def tally_event(stats: DemoStats, event: Event) -> None:
    """Count *event* in *stats* if it is one the summary shows."""
    _ = (stats, event)
