"""Waiting on what runs outside the test: a server process, a scrape, a failover, a demo's output.

`eventually` holds the suite's one polling sleep. Whatever a test drives itself (threads, tasks,
callbacks) it synchronizes with events, barriers and joins instead.
"""

from __future__ import annotations

import time

from collections.abc import Callable
from typing import TypeVar


T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """The first true value *check()* returns, asked every *interval* seconds.

    Past *timeout* it returns the last (false) value, or re-raises the last of the *ignoring*
    exceptions, which until then count as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ignoring:
            if time.monotonic() > deadline:
                raise
        else:
            if value or time.monotonic() > deadline:
                return value
        time.sleep(interval)
