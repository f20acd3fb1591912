"""Shared fixtures: fresh telemetry state per test, and real servers on free loopback ports."""

from __future__ import annotations

import faulthandler
import os

from collections.abc import Iterator

import pytest

from hypothesis import Phase, settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import commtel
import commtel.events

from commtel.simulator import SimulatedPlatform
from commtel.telemetry import _metrics
from commtel.telemetry._export import CorrelationSpanProcessor, RedactingSpanExporter
from commtel.testing import set_testing
from tests.harness.clock import FakeClock
from tests.harness.demo import RunningDemo, watch
from tests.harness.otlp import OTLPGrpcReceiver, OTLPHttpReceiver
from tests.harness.procs import PostgresServer, RedisClusterServers, RedisSentinelGroup, RedisServer
from tests.harness.prometheus import PrometheusServer


# ./dev mutate: reproducible verdicts, and no time spent shrinking a mutant's counterexample.
settings.register_profile(
    "mutation", derandomize=True, database=None, deadline=None, phases=(Phase.explicit, Phase.generate)
)


#: A test this long past its own time limit is stuck where pytest-timeout's signal cannot end it
#: (a timeout raised inside a garbage-collector callback is swallowed, and the alarm fires once):
#: every thread's stack goes to stderr and the run exits, so CI names the culprit at once instead
#: of running into its own limit with nothing printed.
_STUCK_GRACE_S = 180.0
_REAL_STDERR = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REAL_STDERR] = os.dup(2)  # while a test runs, fd 2 is pytest's capture file


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout"))
    faulthandler.dump_traceback_later(limit + _STUCK_GRACE_S, exit=True, file=item.config.stash[_REAL_STDERR])
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session demo's tests first, so the demo and its alert drill start with the session; the drill's test last.

    The alert drill takes minutes of wall-clock time (Prometheus and Alertmanager evaluate on their own
    schedule): the rest of the suite runs meanwhile instead of waiting for it.
    """

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("after_the_drill"):
            return 2
        return 0 if "running_demo" in getattr(item, "fixturenames", ()) else 1

    items.sort(key=rank)


_EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(CorrelationSpanProcessor())
_provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(_EXPORTER)))
trace.set_tracer_provider(_provider)


@pytest.fixture(autouse=True)
def registry() -> Iterator[CollectorRegistry]:
    """A fresh metrics registry, default listeners and real sleeps for every test."""
    reg = CollectorRegistry()
    previous = _metrics._current
    _metrics.use_registry(reg)
    commtel.events.set_listeners(None)
    set_testing(on=False)
    _EXPORTER.clear()
    yield reg
    commtel.events.set_listeners(None)
    set_testing(on=False)
    _metrics._current = previous


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The in-memory exporter every span of this test ends up in (already redacted)."""
    return _EXPORTER


@pytest.fixture
def platform() -> Iterator[SimulatedPlatform]:
    """A simulated platform API on a free port (100 requests/minute per client)."""
    with SimulatedPlatform("testplatform", limit=100, window_s=60.0, seed=1) as p:
        yield p


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's real redis-server, flushed before the test."""
    import redis

    if redis_server.proc is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real 3-primary Redis Cluster for the session."""
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    """``redis+cluster://`` URL of the session's cluster, flushed before the test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def sentinel_group() -> Iterator[RedisSentinelGroup]:
    """A fresh primary + replica + Sentinel (tests may kill the primary)."""
    group = RedisSentinelGroup().start()
    yield group
    group.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    server = PostgresServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def otlp_http() -> Iterator[OTLPHttpReceiver]:
    receiver = OTLPHttpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def otlp_grpc() -> Iterator[OTLPGrpcReceiver]:
    receiver = OTLPGrpcReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    server = PrometheusServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def running_demo(
    otlp_http: OTLPHttpReceiver, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningDemo]:
    """One `commtel demo --alerts` for the session, watched by Prometheus and Alertmanager from its start."""
    from tests.harness.procs import wait_port

    demo = RunningDemo(otlp_http, str(tmp_path_factory.mktemp("demo")))
    try:
        wait_port(demo.port, 60, demo.proc)  # type: ignore[arg-type]
        demo.alerting = watch(demo, request, tmp_path_factory.mktemp("ops-bundle"))
        yield demo
    finally:
        if demo.proc.poll() is None:
            demo.stop()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Time stands still unless the test advances it or a policy sleeps (every sleep is recorded)."""
    return FakeClock().install(monkeypatch)
