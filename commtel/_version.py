"""commtel's version, read from the installed distribution's metadata on first use."""

from __future__ import annotations

import functools


__all__ = ["version"]


@functools.cache
def version() -> str:
    """The installed commtel distribution's version (``commtel.__version__``)."""
    from importlib.metadata import version as distribution_version

    return distribution_version("commtel")
