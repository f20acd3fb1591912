"""The demo's world: simulated platforms, the metrics endpoint and the worker threads."""

from __future__ import annotations

import itertools
import threading

from collections.abc import Callable

from ..simulator import SimulatedPlatform
from ..telemetry import ContextExecutor, correlation_context, start_http_server
from ._report import DemoStats
from ._scenarios import SCENARIOS


__all__ = ["DemoWorld"]


class DemoWorld:
    """Starts and stops everything the demo's workers talk to."""

    def __init__(self, stats: DemoStats, *, metrics_port: int, metrics_addr: str, workers: int) -> None:
        self.stats = stats
        self.workers = workers
        self.requested_metrics_port = metrics_port
        self.metrics_addr = metrics_addr
        self.metrics_port = metrics_port
        self.stop_event = threading.Event()
        # A Twitter-like REST API with OAuth and a tight quota; a flaky chat API.
        self.social = SimulatedPlatform("social", limit=40, window_s=5.0, require_auth=True, token_ttl_s=8.0, seed=7)
        self.chat = SimulatedPlatform("chat", limit=500, window_s=1.0, error_rate=0.05, seed=11)
        self._server: object | None = None
        self._pool: ContextExecutor | None = None
        self._threads: list[threading.Thread] = []

    def urls(self) -> dict[str, str]:
        """Base URL of each simulated platform."""
        return {"social": self.social.url, "chat": self.chat.url}

    def start(self) -> None:
        """Start platforms, the metrics endpoint and the workers."""
        self.social.start()
        self.chat.start()
        server, _thread = start_http_server(self.requested_metrics_port, self.metrics_addr)
        self._server = server
        self.metrics_port = int(server.server_address[1])
        scenarios = itertools.cycle(SCENARIOS)
        for n in range(self.workers):
            scenario = next(scenarios)
            thread = threading.Thread(target=self._run, args=(scenario,), name=f"demo-{scenario.__name__}-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, scenario: Callable[[DemoWorld], None]) -> None:
        while not self.stop_event.is_set():
            with correlation_context():
                scenario(self)

    def stop(self) -> None:
        """Stop workers, then platforms and the metrics endpoint."""
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.social.stop()
        self.chat.stop()
        shutdown_server = getattr(self._server, "shutdown", None)
        if shutdown_server is not None:
            shutdown_server()



