"""What the package's ``__init__`` installs for the layers below it.

The event machinery (:mod:`commtel._events`) sits below every component, the telemetry
listener above them all, so ``_events`` cannot import it. ``commtel/__init__.py`` puts
a factory for it here instead; nothing is imported until the first event needs a listener.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


__all__ = ["listeners"]

#: Returns the listeners events go to by default (what ``set_listeners(None)`` restores).
listeners: Callable[[], tuple[Any, ...]] = tuple
