"""Helpers for running the older packages' own examples against commtel.compat."""

from __future__ import annotations

import contextvars

from collections.abc import Callable
from typing import TypeVar


_T = TypeVar("_T")


def isolated(fn: Callable[[], _T]) -> _T:
    """Run *fn* in a copy of the current context, so what an example sets (correlation id …) stays there."""
    return contextvars.copy_context().run(fn)
