"""Fixtures of the instrumentation tests: instrumentors torn down after each test, a real SMTP server."""

from __future__ import annotations

import threading

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from commtel.instrumentation.aiohttp import AioHttpInstrumentor
from commtel.instrumentation.httpx import HTTPXInstrumentor
from commtel.instrumentation.requests import RequestsInstrumentor
from tests.harness.procs import free_port


@pytest.fixture(autouse=True)
def _uninstrument_all() -> Iterator[None]:
    """Every instrumentor (commtel's and contrib's) is uninstrumented after each test."""
    yield
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor as ContribRequests

    for instrumentor in (HTTPXInstrumentor(), RequestsInstrumentor(), AioHttpInstrumentor(),
                         HTTPXClientInstrumentor(), ContribRequests(), AioHttpClientInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()


@dataclass
class SMTPHandler:
    """aiosmtpd handler that keeps messages and can answer 451 (transient) a number of times."""

    messages: list[Any] = field(default_factory=list)
    fail: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.fail:
                self.fail -= 1
                return "451 4.3.0 try again later"
            self.messages.append(envelope)
        return "250 OK"


@dataclass
class SMTPServer:
    host: str
    port: int
    handler: SMTPHandler


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    from aiosmtpd.controller import Controller

    handler = SMTPHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


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
