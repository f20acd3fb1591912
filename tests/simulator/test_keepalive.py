"""The simulated platform answers keep-alive requests without a delayed-ACK stall."""

from __future__ import annotations

import statistics
import time

import httpx

from commtel.simulator import SimulatedPlatform


def test_keepalive_requests_answer_without_nagle_stall(platform: SimulatedPlatform) -> None:
    """Requests on one kept-alive connection take well under the ~40 ms a Nagle/delayed-ACK stall costs."""
    durations = []
    with httpx.Client(base_url=platform.url) as client:
        for _ in range(15):
            started = time.perf_counter()
            assert client.post("/api/x", json={"n": 1}).status_code == 200
            durations.append(time.perf_counter() - started)
    assert statistics.median(durations) < 0.02
