"""Fixtures of the instrumentation tests: instrumentors torn down after each test, a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from commtel.instrumentation.aiohttp import AioHttpInstrumentor
from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.instrumentation.requests import RequestsInstrumentor
from commtel.simulator import SimulatedMailServer
from tests.instrumentation.clients import CLIENTS, Client


@pytest.fixture(autouse=True)
def _uninstrument_all() -> Iterator[None]:
    """Every instrumentor (commtel's and contrib's) is uninstrumented after each test."""
    yield
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor as ContribRequests

    for instrumentor in (
        HTTPXInstrumentor(),
        RequestsInstrumentor(),
        AioHttpInstrumentor(),
        HTTPXClientInstrumentor(),
        ContribRequests(),
        AioHttpClientInstrumentor(),
    ):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@pytest.fixture
def smtp_server() -> Iterator[SimulatedMailServer]:
    """A real SMTP server (the simulator's mail relay, aiosmtpd) on a free loopback port."""
    with SimulatedMailServer() as server:
        yield server


@pytest.fixture(scope="session")
def _shared_platform() -> Iterator[Any]:
    from commtel.simulator import SimulatedPlatform

    with SimulatedPlatform("testplatform", limit=100, window_s=60.0, seed=1) as platform:
        yield platform


@pytest.fixture
def platform(_shared_platform: Any) -> Any:
    """The simulated platform, shared by this directory's tests and reset for each (stopping one costs 0.5 s)."""
    _shared_platform.reset()
    return _shared_platform


@pytest.fixture(params=CLIENTS, ids=[c.name for c in CLIENTS])
def client(request: pytest.FixtureRequest) -> Client:
    """Each client library, used the plain way."""
    return request.param
