"""Local simulated platforms for tests, examples and the demo."""

from __future__ import annotations

from ._platform import PlatformStats, RecordedRequest, SimulatedPlatform


__all__ = ["PlatformStats", "RecordedRequest", "SimulatedPlatform"]
