"""A simulated dependency whose latency grows with concurrency beyond a knee, and may have a long tail.

:class:`LatencyModel` is the pure model: a call that arrives while *n* calls are in
flight (itself included) takes::

    base_latency_s x max(1, n / knee) ** exponent x jitter      (x tail_factor, at tail_rate)

Up to the knee the dependency is idle enough that latency does not depend on load;
beyond it, calls queue (``exponent=1``: a saturated server, throughput stays at
``knee / base_latency_s`` and latency grows with the queue, Little's law) or thrash
(``exponent > 1``: throughput falls too). *jitter* is log-normal with spread *jitter*
(median 1); a *tail_rate* share of calls is *tail_factor* times slower.

:class:`SimulatedDependency` runs that model for real: awaited in-process
(``await dependency.acall()``), called from threads (``dependency.call()``), or served
over HTTP on 127.0.0.1 (``GET /`` answers after the modelled latency). The knee, the
base latency and the tail can be changed while it runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from typing_extensions import Self

from .. import _validation as check


__all__ = ["LatencyModel", "SimulatedDependency"]


@dataclass(slots=True, kw_only=True)
class LatencyModel:
    """The latency of one call, given the calls in flight and two random draws.

    .. versionadded:: 0.1.0
    """

    base_latency_s: float = 0.05
    knee: float = 20.0
    exponent: float = 1.0
    jitter: float = 0.1
    tail_rate: float = 0.0
    tail_factor: float = 10.0

    def __post_init__(self) -> None:
        owner = "LatencyModel"
        self.base_latency_s = check.number(self.base_latency_s, "base_latency_s", owner=owner, strict=True)
        self.knee = check.number(self.knee, "knee", owner=owner, strict=True)
        self.exponent = check.number(self.exponent, "exponent", owner=owner)
        self.jitter = check.number(self.jitter, "jitter", owner=owner)
        self.tail_rate = check.fraction(self.tail_rate, "tail_rate", owner=owner)
        self.tail_factor = check.number(self.tail_factor, "tail_factor", owner=owner, minimum=1)

    def latency(self, in_flight: int, normal: float, uniform: float) -> float:
        """Seconds a call takes that arrives with *in_flight* calls running (itself included).

        Args:
            in_flight: Calls in flight, this one included.
            normal: A standard normal draw (the jitter).
            uniform: A uniform draw in [0, 1) (the tail).
        """
        load: float = max(1.0, in_flight / self.knee) ** self.exponent
        tail = self.tail_factor if uniform < self.tail_rate else 1.0
        return self.base_latency_s * load * math.exp(self.jitter * normal) * tail

    def capacity(self) -> float:
        """Calls per second at best (at the knee, jitter aside)."""
        return self.knee / self.base_latency_s


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    dependency: SimulatedDependency

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are normal here."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """No access log."""

    def do_GET(self) -> None:
        latency = self.server.dependency.call()
        payload = json.dumps({"latency_s": latency}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class SimulatedDependency:
    """A dependency that slows down past its knee: awaitable, callable, or served over HTTP.

    Args:
        model: The :class:`LatencyModel`; its fields may be changed while it runs
            (``dependency.model.knee = 10``).
        seed: Seed of the jitter and tail draws (reproducible runs).
        host / port: Where :meth:`start` serves HTTP (port 0: a free one).

    Example::

        dependency = SimulatedDependency(LatencyModel(base_latency_s=0.05, knee=20), seed=1)
        latency = await dependency.acall()
        with dependency:  # serves GET / on dependency.url
            httpx.get(dependency.url)

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, model: LatencyModel | None = None, *, seed: int | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        owner = "SimulatedDependency"
        check.instance(model, "model", LatencyModel, owner=owner, optional=True)
        check.whole(port, "port", owner=owner, minimum=0)
        self.model = model or LatencyModel()
        self.in_flight = 0
        self.calls = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SimulatedDependency({self.model!r}, in_flight={self.in_flight})"

    def _arrive(self) -> float:
        with self._lock:
            self.in_flight += 1
            self.calls += 1
            n = self.in_flight
            normal, uniform = self._random.gauss(0.0, 1.0), self._random.random()
        return self.model.latency(n, normal, uniform)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    async def acall(self) -> float:
        """Take the modelled time (awaiting); returns it. A cancelled call leaves at once."""
        latency = self._arrive()
        try:
            await asyncio.sleep(latency)
        finally:
            self._leave()
        return latency

    def call(self) -> float:
        """Take the modelled time (sleeping this thread); returns it."""
        latency = self._arrive()
        try:
            time.sleep(latency)
        finally:
            self._leave()
        return latency

    @property
    def url(self) -> str:
        """Base URL while serving, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            msg = "not serving: call start() first"
            raise RuntimeError(msg)
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve ``GET /`` over HTTP in a background thread."""
        if self._server is None:
            self._server = _Server(self._address, _Handler)
            self._server.dependency = self
            self._thread = threading.Thread(target=self._server.serve_forever, name="sim-dependency", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join()
            self._server.server_close()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
