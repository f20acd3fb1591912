"""``commtel demo --alerts``: hold each alert's condition long enough for it to fire, then end it.

Three steady workloads run in every demo, healthy unless a drill says otherwise:

- ``crm``: a contacts sync through a retry policy (4 attempts, a retry budget shared on
  the demo's Redis) against a CRM platform;
- ``bulk-export``: a job asking a 2-per-second limiter for one slot per export;
- ``payments``: calls through a circuit breaker (3 failures, 5 s recovery).

With ``--alerts`` the drills start after a warm-up (so Prometheus has seen every series
at 0) and all hold for the drill duration, then stop together:

==========================  ================================================  ==================================
drill                       condition                                         alerts
==========================  ================================================  ==================================
CRM outage                  every CRM call fails (503, or 429 past 2 req/s)   RetryStorm, ServerThrottling,
                                                                              RetriesExhausted (after 2 min)
export rush                 exports ask 10 slots/s of a 2/s limiter           SustainedThrottling
payments down               the payments API answers 503                      CircuitOpen (after 2 min)
Redis down                  redis-server stopped                              RateLimitBackendErrors,
                                                                              CircuitBackendErrors,
                                                                              RetryBudgetBackendErrors
client secret rotated       the social token endpoint refuses the client      OAuthRefreshFailing;
                                                                              TokenExpiringWithoutRefresh
                                                                              (after 6 min)
==========================  ================================================  ==================================

A sustained retry storm, throttling and open breaker fire within 3 minutes, so 150 s of
drill shows them; 420 s (the default) shows every alert. Stopping the demo itself raises
CommtelTargetDown after a minute.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._exceptions import CircuitOpenError, CommtelError


if TYPE_CHECKING:
    from ._world import DemoWorld

__all__ = ["WORKLOADS", "AlertDrills", "ApiError"]

_EXPORTS_PER_S = 1.0
_RUSH_EXPORTS_PER_S = 10.0


class ApiError(Exception):
    """An HTTP error answer; retry policies read its ``status_code`` and ``headers`` (Retry-After)."""

    def __init__(self, status_code: int, headers: object) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers


def _get(url: str) -> int:
    """GET *url* with the standard library (no instrumented client): its status, or :class:`ApiError`."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the demo's own simulated platforms
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise ApiError(exc.code, exc.headers) from None


def crm_sync(world: DemoWorld) -> None:
    """Sync one contact page from the CRM through a retry policy; outages exhaust it."""
    started, ok = time.monotonic(), False
    try:
        world.crm_retry.call(_get, f"{world.crm.url}/api/contacts")
        ok = True
    except (ApiError, CommtelError, OSError):
        world.stats.bump("contact syncs given up")
    world.stats.record_call("crm", time.monotonic() - started, ok=ok)
    world.stop_event.wait(0.25)


def bulk_export(world: DemoWorld) -> None:
    """Ask the export limiter for a slot, at 1/s (10/s in the export rush drill)."""
    decision = world.export_limiter.try_acquire("exports")
    world.stats.bump("exports admitted" if decision.allowed else "exports throttled")
    rate = _RUSH_EXPORTS_PER_S if world.alerts is not None and world.alerts.running else _EXPORTS_PER_S
    world.stop_event.wait(1.0 / rate)


def payment(world: DemoWorld) -> None:
    """Charge through the payments breaker: rejected at once while it is open."""
    started, ok = time.monotonic(), False
    try:
        world.payments_breaker.call(_get, f"{world.payments.url}/api/charge")
        ok = True
    except CircuitOpenError:
        world.stats.bump("payments rejected by the breaker")
    except (ApiError, OSError):
        pass
    world.stats.record_call("payments", time.monotonic() - started, ok=ok)
    world.stop_event.wait(0.2)


#: Workloads with a thread each, in every demo (separate from the scenario workers).
WORKLOADS: tuple[Callable[[DemoWorld], None], ...] = (crm_sync, bulk_export, payment)


class AlertDrills:
    """Start every alert drill after *warmup_s*, hold them *duration_s*, then end them."""

    def __init__(self, world: DemoWorld, *, duration_s: float, warmup_s: float = 10.0) -> None:
        self.world = world
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.running = False
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-alert-drills", daemon=True)
        self._secret = ""

    def start(self) -> None:
        """Schedule the drills."""
        self._thread.start()

    def stop(self) -> None:
        """End the drills early (the demo stops)."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self.running:
            self._end()

    def _run(self) -> None:
        if self._stop.wait(self.warmup_s):
            return
        self._begin()
        self._stop.wait(self.duration_s)
        if self.running:
            self._end()

    def _begin(self) -> None:
        world = self.world
        world.crm.error_rate, world.crm.limit = 1.0, 2
        world.payments.error_rate = 1.0
        world.redis.stop()
        self._secret = world.social.client_secret
        world.social.client_secret = "rotated"  # noqa: S105 - the simulator now refuses the demo's client
        world.social.expire_tokens()
        self.started_at = time.time()
        self.running = True
        world.stats.note(f"alert drills started at {self.started_at:.3f} for {self.duration_s:.0f} s")

    def _end(self) -> None:
        world = self.world
        self.running = False
        world.crm.error_rate, world.crm.limit = 0.0, world.CRM_LIMIT
        world.payments.error_rate = 0.0
        world.redis.start()
        world.social.client_secret = self._secret
        self.stopped_at = time.time()
        world.stats.note(f"alert drills stopped at {self.stopped_at:.3f}")
