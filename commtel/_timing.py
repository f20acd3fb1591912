"""Clock, sleeping and the jitter source for the I/O drivers; decision cores are handed their values.

A zero or negative delay never sleeps (``time.sleep(0)`` costs ~90 µs here), and
:func:`commtel.testing.set_testing` makes every wait instant for users' own tests.
"""

from __future__ import annotations

import asyncio
import random
import time


__all__ = ["asleep", "is_testing", "jitter", "monotonic", "set_testing_flag", "sleep", "wall"]

monotonic = time.monotonic
wall = time.time
#: Uniform draws in [0, 1) for backoff jitter (tests replace it to get exact delays).
jitter = random.random

_testing = False


def set_testing_flag(*, on: bool) -> bool:
    """Set the instant-sleep flag and return its previous value."""
    global _testing
    previous, _testing = _testing, on
    return previous


def is_testing() -> bool:
    """Whether waits are currently instant."""
    return _testing


def sleep(seconds: float) -> None:
    """Sleep *seconds* unless zero or in testing mode."""
    if seconds > 0 and not _testing:
        time.sleep(seconds)


async def asleep(seconds: float) -> None:
    """Await *seconds* unless zero or in testing mode."""
    if seconds > 0 and not _testing:
        await asyncio.sleep(seconds)
