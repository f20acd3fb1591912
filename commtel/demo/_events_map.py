"""Which policy events the demo's summary counts, and under which platform."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._events import Event
from ..events import CircuitStateChanged, RateLimitWaited, RetryScheduled, TokenRequestFinished


if TYPE_CHECKING:
    from ._report import DemoStats


def tally_event(stats: DemoStats, event: Event) -> None:
    """Count *event* in *stats* if it is one the summary shows."""
    if isinstance(event, RetryScheduled):
        stats.count(event.platform or event.operation, "retries")
    elif isinstance(event, RateLimitWaited):
        stats.count(event.platform or event.limiter, "throttled")
    elif isinstance(event, CircuitStateChanged):
        stats.breaker_changed(event.breaker, event.from_state, event.to_state)
        if event.to_state == "open":
            stats.count(event.breaker, "breaker_trips")
    elif isinstance(event, TokenRequestFinished):
        stats.bump("token requests ok" if event.success else "token requests failed")
