"""The client libraries each instrumentor patches, as requirement strings.

Kept per library (not one shared tuple) so that a missing library disables only
its own instrumentor: ``opentelemetry-instrument`` checks each instrumentor's
``instrumentation_dependencies()``, and the package declares the libraries under
the ``instruments-any`` extra (any one of them is enough to load the others'
entry points, which then skip themselves with ``ModuleNotFoundError``).
"""

from __future__ import annotations


__all__ = ["_instruments", "_instruments_aiohttp", "_instruments_httpx", "_instruments_requests"]

_instruments_httpx = ("httpx >= 0.27",)
_instruments_requests = ("requests >= 2.31",)
_instruments_aiohttp = ("aiohttp >= 3.9",)

#: Every library some commtel instrumentor can patch (any one suffices).
_instruments = (*_instruments_httpx, *_instruments_requests, *_instruments_aiohttp)
