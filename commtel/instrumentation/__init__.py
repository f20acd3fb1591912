"""Instrumentation: the composite guard, ``instrument(obj)``, per-host policies, HTTP instrumentors.

Instrumenting observes by default; retry, breaker, limiter and timeout run only where a
policy configures them (``base = "recommended"`` turns on :data:`RECOMMENDED` everywhere).
The HTTP client instrumentors live in their own modules (``commtel.instrumentation.httpx``,
``.requests``, ``.aiohttp``) so that importing this package never imports a client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._guard import Guard
    from ._http import RequestInfo, ResponseInfo, redact_url
    from ._instrument import instrument, is_instrumented, uninstrument
    from ._policies import (
        ENV_POLICIES,
        ENV_POLICIES_FILE,
        IDEMPOTENT_METHODS,
        MAX_HOST_SCOPES,
        OTHER_HOSTS,
        RECOMMENDED,
        HostPolicies,
        HostPolicy,
    )


__all__ = [
    "ENV_POLICIES",
    "ENV_POLICIES_FILE",
    "IDEMPOTENT_METHODS",
    "MAX_HOST_SCOPES",
    "OTHER_HOSTS",
    "RECOMMENDED",
    "Guard",
    "HostPolicies",
    "HostPolicy",
    "RequestInfo",
    "ResponseInfo",
    "instrument",
    "is_instrumented",
    "redact_url",
    "uninstrument",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._guard": ("Guard",),
            "._http": ("RequestInfo", "ResponseInfo", "redact_url"),
            "._instrument": ("instrument", "is_instrumented", "uninstrument"),
            "._policies": (
                "ENV_POLICIES",
                "ENV_POLICIES_FILE",
                "IDEMPOTENT_METHODS",
                "MAX_HOST_SCOPES",
                "OTHER_HOSTS",
                "RECOMMENDED",
                "HostPolicies",
                "HostPolicy",
            ),
        },
    )
