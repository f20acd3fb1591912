"""Local simulated platforms for tests, examples and the demo."""

from __future__ import annotations

from ._mail import SimulatedMailServer
from ._platform import PlatformStats, RecordedRequest, SimulatedPlatform


__all__ = ["PlatformStats", "RecordedRequest", "SimulatedMailServer", "SimulatedPlatform"]
