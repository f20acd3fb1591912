"""Local simulated platforms for tests, examples and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._dependency import LatencyModel, SimulatedDependency
    from ._load import LoadRun, open_loop
    from ._mail import SimulatedMailServer
    from ._platform import PlatformStats, RecordedRequest, SimulatedPlatform


__all__ = [
    "LatencyModel",
    "LoadRun",
    "PlatformStats",
    "RecordedRequest",
    "SimulatedDependency",
    "SimulatedMailServer",
    "SimulatedPlatform",
    "open_loop",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._dependency": ("LatencyModel", "SimulatedDependency"),
            "._load": ("LoadRun", "open_loop"),
            "._mail": ("SimulatedMailServer",),
            "._platform": ("PlatformStats", "RecordedRequest", "SimulatedPlatform"),
        },
    )
