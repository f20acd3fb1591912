"""The fake clock of the test suites: time moves only when something sleeps or the test advances it."""

from __future__ import annotations

from typing import Any

from commtel import _timing


class FakeClock:
    """Monotonic time that only moves when something sleeps (or the test advances it).

    Install it over :mod:`commtel._timing` for the policies, or pass it as a ``clock=``
    callable (the trackers) with a wall-like *start*.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(seconds)
            self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def install(self, monkeypatch: Any) -> FakeClock:
        monkeypatch.setattr(_timing, "monotonic", self.monotonic)
        monkeypatch.setattr(_timing, "sleep", self.sleep)
        monkeypatch.setattr(_timing, "asleep", self.asleep)
        return self
