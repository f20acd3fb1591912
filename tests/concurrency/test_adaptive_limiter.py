"""AdaptiveLimiter through its drivers: outcomes sampled, limit published, probes on refusal, a real HTTP knee."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from prometheus_client import CollectorRegistry

from commtel.concurrency import AIMD, AdaptiveLimiter, ConcurrencyLimitChanged, ConcurrencyLimitExceeded
from commtel.errors import ConfigurationError, RateLimitedByServer
from commtel.simulator import LatencyModel, SimulatedDependency
from commtel.telemetry import start_span
from commtel.testing import capture_events
from tests.harness.clock import FakeClock


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def _aimd(**options: object) -> AdaptiveLimiter:
    settings: dict[str, object] = {
        "algorithm": AIMD(backoff_ratio=0.5),
        "initial_limit": 2,
        "min_samples": 1,
        "window_s": 0.01,
    }
    settings.update(options)
    return AdaptiveLimiter("api", **settings)  # type: ignore[arg-type]


def _finish(
    limiter: AdaptiveLimiter, clock: FakeClock, *, exc: BaseException | None = None, result: object = None
) -> None:
    permit = limiter.acquire()
    clock.advance(0.02)
    limiter.release(permit, exc, result)


@pytest.mark.parametrize(
    ("exc", "result", "limit"),
    [
        (None, "ok", 3),  # a latency sample: no overload, +1
        (None, _Response(503), 1),  # the dependency said overloaded
        (None, _Response(429), 1),
        (TimeoutError("slow"), None, 1),
        (RateLimitedByServer("api", 1.0), None, 1),
        (ValueError("bad input"), None, 2),  # says nothing about load
        (asyncio.CancelledError(), None, 2),
    ],
)
def test_outcomes_are_sampled_as_latency_drops_or_nothing(
    clock: FakeClock, exc: BaseException | None, result: object, limit: int
) -> None:
    """Results are latency samples; 429/503 and timeouts are drops; other errors and cancellations are ignored."""
    limiter = _aimd()
    _finish(limiter, clock, exc=exc, result=result)
    assert limiter.limit == limit
    assert limiter.in_flight == 0


def test_limit_changes_are_published_as_events_metrics_and_span_events(
    clock: FakeClock, registry: CollectorRegistry, spans
) -> None:
    """Each move is an event; the limit gauge and the measured latencies follow; the span that moved it says why."""
    limiter = AdaptiveLimiter("api", initial_limit=8, min_samples=2, window_s=0.01)
    assert registry.get_sample_value("commtel_concurrency_limit", {"limiter": "api", "kind": "adaptive"}) == 8
    with capture_events() as events, start_span("call"):
        for _ in range(2):
            permits = [limiter.acquire() for _ in range(8)]
            clock.advance(0.05)
            for permit in permits:
                limiter.release(permit, None, "ok")
            clock.advance(0.01)
    changes = [e for e in events if isinstance(e, ConcurrencyLimitChanged)]
    assert [(c.from_limit, c.to_limit, c.reason) for c in changes][:1] == [(8, 9, "latency")]
    assert changes[0].rtt_s == pytest.approx(0.05) and changes[0].baseline_s == pytest.approx(0.05)
    assert (
        registry.get_sample_value("commtel_concurrency_limit", {"limiter": "api", "kind": "adaptive"}) == limiter.limit
    )
    assert registry.get_sample_value(
        "commtel_concurrency_latency_seconds", {"limiter": "api", "measure": "baseline"}
    ) == (pytest.approx(0.05))
    (span,) = [s for s in spans.get_finished_spans() if s.name == "call"]
    assert any(e.name == "commtel.concurrency.limit_changed" for e in span.events)


def test_a_due_probe_starts_even_while_every_call_is_refused(clock: FakeClock) -> None:
    """Refusals let the core start a due probe (no call may finish to do it)."""
    limiter = AdaptiveLimiter("api", initial_limit=4, min_samples=1, window_s=0.01)
    _finish(limiter, clock, result="ok")  # baseline known; first probe 0.5 s later at most
    held = [limiter.acquire() for _ in range(limiter.limit)]
    clock.advance(1.0)
    with capture_events() as events, pytest.raises(ConcurrencyLimitExceeded) as info:
        limiter.acquire()
    assert info.value.kind == "adaptive"
    assert "adaptive limiter 'api' is full" in str(info.value)
    assert [e.reason for e in events if isinstance(e, ConcurrencyLimitChanged)] == ["probe"]
    for permit in held:
        limiter.release(permit, None, "ok")


def test_decorators_sync_and_async_share_the_limit(clock: FakeClock) -> None:
    """The same limiter decorates sync and async functions; a call over the limit is refused without running."""
    limiter = AdaptiveLimiter("api", initial_limit=1)

    @limiter
    def sync(x: int) -> int:
        return x * 2

    @limiter
    async def inner() -> int:
        return sync(1)  # the async call holds the only slot

    assert sync(2) == 4
    with pytest.raises(ConcurrencyLimitExceeded):
        asyncio.run(inner())
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_limit": 0}, "initial_limit must be an integer >= 1"),
        ({"min_limit": 5, "initial_limit": 4}, "min_limit <= initial_limit <= max_limit"),
        ({"probe_fraction": 1.0}, "probe_fraction must be within"),
        ({"window_s": 0}, "window_s and probe_interval_s must be > 0"),
        ({"min_samples": 0}, "min_samples must be an integer >= 1"),
        ({"algorithm": "cubic"}, "algorithm must be one of"),
        ({"algorithm": {"backoff_ratio": 0.5}}, "needs name ="),
        ({"algorithm": {"name": "aimd", "backoff_ratio": 2}}, "backoff_ratio must be within"),
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, object], message: str) -> None:
    """Invalid options fail at construction, and check_options finds them without building a limiter."""
    with pytest.raises(ConfigurationError, match=message):
        AdaptiveLimiter("x", **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        AdaptiveLimiter.check_options(**options)


def test_algorithm_as_a_table() -> None:
    """The TOML form {name = "aimd", ...} builds that algorithm."""
    limiter = AdaptiveLimiter("x", algorithm={"name": "aimd", "backoff_ratio": 0.5})
    assert limiter._adaptive.algorithm == AIMD(backoff_ratio=0.5)
    assert "aimd" in repr(limiter)


def test_finds_the_knee_of_a_real_http_dependency() -> None:
    """24 callers against a loopback server with its knee at 4: the limit grows past 2 and stays far from 24."""
    model = LatencyModel(base_latency_s=0.02, knee=4, exponent=1.5, jitter=0.05)
    limiter = AdaptiveLimiter("knee", initial_limit=2, random=random.Random(1).random)
    limits: list[int] = []

    async def caller(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await limiter.acall(client.get, "/")
            except ConcurrencyLimitExceeded:
                await asyncio.sleep(0.005)  # the behaviour under test: a refused client backs off

    async def main(url: str) -> None:
        stop = asyncio.Event()
        limits_ = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=url, limits=limits_) as client:
            callers = [asyncio.create_task(caller(client, stop)) for _ in range(24)]
            for _ in range(30):
                await asyncio.sleep(0.1)  # the behaviour under test: the limit sampled over real time
                limits.append(limiter.limit)
            stop.set()
            await asyncio.gather(*callers)

    with SimulatedDependency(model, seed=1) as dependency:
        asyncio.run(main(dependency.url))
    assert max(limits) >= 4
    assert max(limits[-10:]) <= 10
    assert limiter.in_flight == 0
