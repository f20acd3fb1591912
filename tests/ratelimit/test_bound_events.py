"""Admitted decisions travel as bound events: counted per platform label, seen by every listener."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

import commtel

from commtel import RateLimiter
from commtel.events import RateLimitDecided, get_telemetry_listener
from commtel.ratelimit import TokenBucket


def test_admitted_decisions_are_counted_per_platform_and_reach_user_listeners(registry: CollectorRegistry) -> None:
    """Each platform label gets its own counter; a plain listener sees one reused event per label."""
    seen: list[RateLimitDecided] = []
    commtel.events.set_listeners([get_telemetry_listener(), seen.append])
    try:
        limiter = RateLimiter(TokenBucket(1000.0, 100), name="bound", platform="mastodon")
        for _ in range(3):
            limiter.try_acquire("k")
            limiter.try_acquire("k", platform="bluesky")
        limiter.try_acquire("k", cost=2)
    finally:
        commtel.events.set_listeners(None)

    def allowed(platform: str) -> float | None:
        return registry.get_sample_value(
            "commtel_ratelimit_decisions_total", {"limiter": "bound", "platform": platform, "decision": "allowed"}
        )

    assert (allowed("mastodon"), allowed("bluesky")) == (4.0, 3.0)
    seen = [event for event in seen if isinstance(event, RateLimitDecided)]
    assert [event.platform for event in seen] == ["mastodon", "bluesky"] * 3 + ["mastodon"]
    assert seen[0] is seen[2] and seen[1] is seen[3]
    assert seen[-1].cost == 2
