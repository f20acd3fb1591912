"""Every component's telemetry module, imported once so its handlers register with the listener.

The one place that knows them all: components import the telemetry package, never the
reverse, so the telemetry package stays free of component imports.
"""

from __future__ import annotations

import functools

from .breaker import _telemetry as breaker
from .chaos import _telemetry as chaos
from .concurrency import _telemetry as concurrency
from .fallback import _telemetry as fallback
from .hedging import _telemetry as hedging
from .messages import _telemetry as messages
from .oauth import _telemetry as oauth
from .progress import _telemetry as progress
from .ratelimit import _telemetry as ratelimit
from .retries import _telemetry as retries
from .telemetry import _on_operations as operations
from .telemetry._listener import TelemetryListener
from .timeouts import _telemetry as timeouts


MODULES = (
    breaker,
    chaos,
    concurrency,
    fallback,
    hedging,
    messages,
    oauth,
    operations,
    progress,
    ratelimit,
    retries,
    timeouts,
)


@functools.cache
def get_telemetry_listener() -> TelemetryListener:
    """The process-wide telemetry listener (every component's handlers registered).

    .. versionadded:: 0.1.0
    """
    return TelemetryListener()
