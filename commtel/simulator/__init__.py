"""Local simulated platforms for tests, examples and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._mail import SimulatedMailServer
    from ._platform import PlatformStats, RecordedRequest, SimulatedPlatform


__all__ = ["PlatformStats", "RecordedRequest", "SimulatedMailServer", "SimulatedPlatform"]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._mail": ("SimulatedMailServer",),
            "._platform": ("PlatformStats", "RecordedRequest", "SimulatedPlatform"),
        },
    )
