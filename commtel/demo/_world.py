"""The demo's world: simulated platforms, instrumented clients, stores, chaos and workers."""

from __future__ import annotations

import logging
import shutil
import smtplib
import subprocess
import tempfile
import threading

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..breaker import CircuitBreaker
from ..context import correlation_context
from ..instrumentation import HostPolicies, HostPolicy, instrument, uninstrument
from ..messages import ConversationTracker
from ..oauth import OAuthClient, OAuthProvider
from ..progress import ProgressTracker
from ..ratelimit import RateLimiter, RedisBackend, TokenBucket
from ..retries import RetryBudget, RetryConfig, RetryPolicy
from ..simulator import SimulatedMailServer, SimulatedPlatform
from ..telemetry import start_http_server
from ._alerts import WORKLOADS, AlertDrills
from ._chaos import Chaos
from ._resilience import ResilienceDrill
from ._scenarios import SCENARIOS


if TYPE_CHECKING:
    from ._report import DemoStats

__all__ = ["DemoWorld"]

_log = logging.getLogger("commtel.demo")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _LocalRedis:
    """A throwaway redis-server for the distributed limiter, when the binary exists."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> bool:
        if self.binary is None:
            return False
        self.proc = subprocess.Popen(  # noqa: S603 - our own redis-server binary, fixed arguments
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class DemoWorld:
    """Starts and stops everything the demo's workers talk to.

    - ``social``: a Twitter-like REST API behind OAuth (client credentials, 8 s tokens)
      with a quota of 40 requests per 5 s, called with httpx through commtel's
      instrumentor (limiter with server feedback, retry, breaker).
    - ``chat``: a chat API with random 5xx and periodic error bursts, called with
      requests; its breaker trips during bursts and recovers by probing.
    - ``email``: an SMTP relay that sometimes answers 451; ``smtplib`` is instrumented
      with ``commtel.instrument`` and retries.
    - a conversation tracker and a progress tracker on SQLite in a temp directory;
    - a distributed limiter, a shared breaker and the CRM sync's retry budget on a local
      redis-server that the chaos drill stops and restarts (fail-open, counted), or on an
      unreachable address without redis-server;
    - the CRM sync, bulk export and payments workloads of the alert drills (see ``_alerts``);
    - the resilience drill: an adaptive limiter, a bulkhead, timeouts, hedging, fallbacks
      and a fault injector around two in-process simulated dependencies.
    """

    CHAT_LIMIT = 40
    CHAT_ERROR_RATE = 0.03
    CRM_LIMIT = 100

    def __init__(
        self,
        stats: DemoStats,
        *,
        metrics_port: int,
        metrics_addr: str,
        workers: int,
        alerts_s: float | None = None,
    ) -> None:
        self.stats = stats
        self.workers = workers
        self.requested_metrics_port = metrics_port
        self.metrics_addr = metrics_addr
        self.metrics_port = metrics_port
        self.stop_event = threading.Event()
        self.social = SimulatedPlatform("social", limit=40, window_s=5.0, require_auth=True, token_ttl_s=8.0, seed=7)
        self.chat = SimulatedPlatform(
            "chat", limit=self.CHAT_LIMIT, window_s=1.0, error_rate=self.CHAT_ERROR_RATE, seed=11
        )
        self.crm = SimulatedPlatform("crm", limit=self.CRM_LIMIT, window_s=1.0, seed=13)
        self.payments = SimulatedPlatform("payments", limit=1000, window_s=1.0, seed=17)
        self.mail = SimulatedMailServer()
        self.redis = _LocalRedis()
        # The sync's retries draw from a budget shared on the demo's Redis: while the Redis drills
        # stop it, retries are allowed (fail open) and every failed round trip is counted.
        self.crm_budget = RetryBudget("crm", redis=self.redis.url, redis_timeout=0.1)
        self.crm_retry = RetryPolicy(
            operation="sync_contacts",
            platform="crm",
            max_attempts=4,
            base_delay=0.05,
            max_delay=0.5,
            budget=self.crm_budget,
        )
        self.export_limiter = RateLimiter(TokenBucket(rate=2, burst=2), name="bulk-export", platform="crm")
        self.payments_breaker = CircuitBreaker("payments", failure_threshold=3, recovery_timeout=5.0)
        self.alerts = None if alerts_s is None else AlertDrills(self, duration_s=alerts_s)
        self.state_dir = Path(tempfile.mkdtemp(prefix="commtel-demo-"))
        self.tracker: ConversationTracker | None = None
        self.progress: ProgressTracker | None = None
        self.oauth: OAuthClient | None = None
        self.shared_limiter: RateLimiter | None = None
        self.shared_breaker: CircuitBreaker | None = None
        self.instrumentors: list[Any] = []
        self.chaos = Chaos(self)
        self.resilience = ResilienceDrill()
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    def urls(self) -> dict[str, str]:
        """What runs where."""
        return {
            "social API (OAuth, 40 req/5 s)": self.social.url,
            "chat API (5xx bursts, 40 req/s the client does not know of)": self.chat.url,
            "CRM API (contacts sync, retried)": self.crm.url,
            "payments API (behind the payments breaker)": self.payments.url,
            "SMTP relay": f"smtp://{self.mail.host}:{self.mail.port}",
            "distributed limiter": self.redis.url
            if self.redis.proc is not None
            else "redis unreachable (fail-open drill)",
            "state (SQLite)": str(self.state_dir),
        }

    def start(self) -> None:
        """Start platforms, clients, the metrics endpoint, chaos and the workers."""
        for platform in (self.social, self.chat, self.crm, self.payments):
            platform.start()
        self.mail.start()
        redis_url = self.redis.url if self.redis.start() else f"redis://127.0.0.1:{_free_port()}/0"
        self.tracker = ConversationTracker(f"sqlite:///{self.state_dir / 'state.db'}", lease_s=5.0)
        self.progress = ProgressTracker(self.tracker.store, kind="batch")
        provider = OAuthProvider(
            name="social", authorize_url=f"{self.social.url}/authorize", token_url=f"{self.social.url}/oauth/token"
        )
        self.oauth = OAuthClient(
            provider, self.social.client_id, self.social.client_secret, grant_type="client_credentials"
        )
        self.shared_limiter = RateLimiter(
            TokenBucket(rate=200, burst=50),
            name="shared-quota",
            platform="social",
            backend=RedisBackend(redis_url, fail_open=True, timeout_s=0.1),
        )
        self.shared_breaker = CircuitBreaker("shared-tenant", failure_threshold=5, redis=redis_url)
        self._instrument()
        server, _thread = start_http_server(self.requested_metrics_port, self.metrics_addr)
        self._server = server
        self.metrics_port = int(server.server_address[1])
        self.chaos.start()
        if self.alerts is not None:
            self.alerts.start()
        for n in range(self.workers):
            thread = threading.Thread(target=self._run, args=(n,), name=f"demo-worker-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()
        for workload in WORKLOADS:
            thread = threading.Thread(
                target=self._repeat, args=(workload,), name=f"demo-{workload.__name__}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _instrument(self) -> None:
        from ..instrumentation.aiohttp import AioHttpInstrumentor
        from ..instrumentation.httpx import HTTPXInstrumentor
        from ..instrumentation.requests import RequestsInstrumentor

        retry = {"max_attempts": 4, "base_delay": 0.05, "max_delay": 2.0, "max_retry_after": 6.0}
        social = HostPolicies.from_mapping(
            {
                "default": {"retry": retry, "timeout_s": 10, "retry_methods": "*"},
                "hosts": {
                    "127.0.0.1": {
                        "platform": "social",
                        "rate_limit": {"rate": 9, "burst": 4},
                        "breaker": {"failure_threshold": 8, "recovery_timeout": 3},
                    }
                },
            }
        )
        chat = HostPolicies.from_mapping(
            {
                "default": {"retry": {**retry, "max_attempts": 2}, "timeout_s": 5, "retry_methods": "*"},
                "hosts": {
                    "127.0.0.1": {"platform": "chat", "breaker": {"failure_threshold": 5, "recovery_timeout": 2.0}}
                },
            }
        )
        for instrumentor, policies in (
            (HTTPXInstrumentor(), social),
            (AioHttpInstrumentor(), social),
            (RequestsInstrumentor(), chat),
        ):
            instrumentor.instrument(policies=policies)
            self.instrumentors.append(instrumentor)
        # smtplib is nobody's instrumentor: commtel.instrument wraps the method in place.
        transient = RetryConfig(
            max_attempts=4,
            base_delay=0.05,
            on=lambda exc: isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500,
        )
        instrument(
            smtplib.SMTP,
            methods=["send_message"],
            operation="send_mail",
            platform="email",
            policy=HostPolicy(retry=transient, breaker={"failure_threshold": 10, "recovery_timeout": 2}),
        )

    def _run(self, n: int) -> None:
        index = n
        while not self.stop_event.is_set():
            self._once(SCENARIOS[index % len(SCENARIOS)])
            index += 1

    def _repeat(self, workload: Callable[[DemoWorld], None]) -> None:
        while not self.stop_event.is_set():
            self._once(workload)

    def _once(self, scenario: Callable[[DemoWorld], None]) -> None:
        with correlation_context():
            try:
                scenario(self)
            except Exception as exc:  # scenarios handle what commtel raises; anything else is a demo bug
                self.stats.bump(f"unexpected {type(exc).__name__}")
                _log.exception("demo scenario %s failed unexpectedly", scenario.__name__)

    def stop(self) -> None:
        """Stop workers and chaos, then platforms, clients and the metrics endpoint."""
        self.stop_event.set()
        self.chaos.stop()
        if self.alerts is not None:
            self.alerts.stop()
        for thread in self._threads:
            thread.join(timeout=15)
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        uninstrument(smtplib.SMTP)
        if self.oauth is not None:
            self.oauth.close()
        for platform in (self.social, self.chat, self.crm, self.payments):
            platform.stop()
        self.mail.stop()
        self.redis.stop()
        if self._server is not None:
            self._server.shutdown()
        shutil.rmtree(self.state_dir, ignore_errors=True)
