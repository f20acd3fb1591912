"""An asyncio event loop on virtual time: when nothing is ready to run, the clock jumps to the next timer.

Timed experiments (hedging a long tail, timeouts racing slow calls) then measure the modelled
latencies exactly, in milliseconds, however busy the machine is. Only for code that waits on
timers, never on sockets. It reads two private attributes of asyncio's base loop
(``_ready``, ``_scheduled``), stable since Python 3.4.
"""

from __future__ import annotations

import asyncio

from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from commtel import _timing


T = TypeVar("T")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` only moves by jumping to the next due timer."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        scheduled: Any = self._scheduled  # type: ignore[attr-defined]
        if not ready:
            due = [timer.when() for timer in scheduled if not timer.cancelled()]
            if due:
                self._virtual_now = max(self._virtual_now, min(due))
        super()._run_once()  # type: ignore[misc]


def run_in_virtual_time(coroutine: Coroutine[Any, Any, T], monkeypatch: pytest.MonkeyPatch) -> T:
    """Run *coroutine* on a fresh virtual-time loop, with commtel's clock reading that loop's time."""
    loop = VirtualTimeLoop()
    with monkeypatch.context() as patch:
        patch.setattr(_timing, "monotonic", loop.time)
        try:
            return loop.run_until_complete(coroutine)
        finally:
            loop.close()
