"""``opentelemetry-instrument python app.py``: an unmodified app with commtel and contrib's instrumentations installed.

Per client library (httpx sync and async, requests, aiohttp), the app in ``zero_code_app.py``
runs once plain and once under ``opentelemetry-instrument`` against the same real local
servers, with resilience configured (``COMMTEL_POLICIES``) for one host only, ``localhost``.
Every call to the unconfigured host ``127.0.0.1`` has the plain run's outcome — statuses,
bodies, exception classes, physical requests, no added waits — and its spans arrive at a
real OTLP receiver; on ``localhost`` the configured breaker opens and its rejection is caught
by the app's own ``except <library error>`` clause, and the app exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from commtel.simulator import SimulatedPlatform
from tests.harness.procs import free_port
from tests.harness.waiting import eventually


APP = Path(__file__).with_name("zero_code_app.py")
BIN = Path(sys.executable).parent
LIBRARIES = ["httpx", "httpx-async", "requests", "aiohttp"]
CLIENT, INTERNAL = 3, 1  # OTLP span kinds
UNSET, ERROR = 0, 2  # OTLP status codes
FAILING = "/status/502"  # what the app calls four times on the guarded host
RESILIENCE = (
    "hosts.localhost = { retry = { max_attempts = 2, base_delay = 0.01, jitter = false },"
    " breaker = { failure_threshold = 3, recovery_timeout = 60 } }"
)


@dataclass
class Servers:
    main: SimulatedPlatform
    tiny: SimulatedPlatform  # one request per minute: the second one gets a 429
    closed: str  # a port where nothing listens


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with (
        SimulatedPlatform("main", limit=10_000, window_s=60.0) as main,
        SimulatedPlatform("tiny", limit=1, window_s=60.0) as tiny,
    ):
        yield Servers(main, tiny, f"http://127.0.0.1:{free_port()}")


@dataclass
class Run:
    lines: list[dict[str, Any]]
    caught: list[str]  # class names the app's `except <library error>` caught on the failing host
    requests: tuple[int, int]  # API calls the main and the tiny server handled
    recorded: list[tuple[str, str, int]]  # (method, path, status) answered by the main server, /slow aside
    headers: list[dict[str, str]]  # the main server's requests' headers, lower-cased names
    env: dict[str, str] = field(default_factory=dict)
    scraped: list[str] = field(default_factory=list)  # /metrics while the app waited at its end

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Each scenario's outcome without its duration."""
        return {line["scenario"]: {k: v for k, v in line.items() if k != "elapsed"} for line in self.lines}

    def elapsed(self) -> dict[str, float]:
        return {line["scenario"]: line["elapsed"] for line in self.lines}

    def failing_requests(self) -> int:
        return sum(path == FAILING for _, path, _ in self.recorded)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COMMTEL_", "PROMETHEUS_MULTIPROC"))}
    env.update(extra)
    return env


def run_app(
    servers: Servers,
    library: str,
    *,
    instrumented: bool,
    env: dict[str, str] | None = None,
    while_running: Callable[[], list[str]] | None = None,
) -> Run:
    """Run the app to its end (plain or under opentelemetry-instrument); *while_running* runs once it is done."""
    servers.main.reset()
    servers.tiny.reset()
    failing = servers.main.url.replace("127.0.0.1", "localhost") + FAILING
    command = [sys.executable, str(APP), library, servers.main.url, servers.tiny.url, servers.closed, failing]
    if instrumented:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    env = env or _env()
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines, caught, scraped = [], [], []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "done":
                break
            parsed = json.loads(line)
            if "breaker" in parsed:
                caught = parsed["breaker"]
            else:
                lines.append(parsed)
        if while_running is not None:
            scraped = while_running()
    finally:
        _, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err
    # The server records a request before answering it. The /slow call's client gave up, and its record
    # (made when the server wakes, perhaps during a later run) is left out.
    headers = [{k.lower(): v for k, v in r.headers.items()} for r in servers.main.requests if "/slow" not in r.path]
    recorded = [(r.method, r.path.split("?")[0], r.status) for r in servers.main.requests if "/slow" not in r.path]
    requests = (servers.main.stats.requests, servers.tiny.stats.requests)
    return Run(lines, caught, requests, recorded, headers, env, scraped)


def instrumented_env(library: str, **extra: str) -> dict[str, str]:
    defaults = {
        "OTEL_SERVICE_NAME": f"zero-code-{library}-{time.monotonic_ns()}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    return _env(**{**defaults, **extra})


@pytest.fixture(scope="module")
def runs(servers, otlp_http) -> Callable[[str], tuple[Run, Run]]:
    """``runs(library)``: the app's plain and instrumented runs, each started once per library."""
    done: dict[str, tuple[Run, Run]] = {}

    def get(library: str) -> tuple[Run, Run]:
        if library not in done:
            plain = run_app(servers, library, instrumented=False)
            metrics_port = free_port()

            def scrape() -> list[str]:
                url = f"http://127.0.0.2:{metrics_port}/metrics"  # COMMTEL_METRICS_ADDR is honoured
                text = urllib.request.urlopen(url, timeout=5).read().decode()
                with pytest.raises(urllib.error.URLError):  # and nothing listens on the default address
                    urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
                return [text]

            env = instrumented_env(
                library,
                OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
                COMMTEL_METRICS_PORT=str(metrics_port),
                COMMTEL_METRICS_ADDR="127.0.0.2",
                COMMTEL_POLICIES=RESILIENCE,
            )
            done[library] = plain, run_app(servers, library, instrumented=True, env=env, while_running=scrape)
        return done[library]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
def test_unmodified_app_behaves_the_same_and_is_traced(library, runs, otlp_http) -> None:
    """Unconfigured host: statuses, bodies, exceptions, physical requests and timing as plain; spans over OTLP."""
    plain, traced = runs(library)
    guarded = {("GET", FAILING, 502)}
    assert traced.outcomes() == plain.outcomes()
    assert traced.outcomes()["throttled"]["status"] == 429  # a 429 is not retried …
    assert traced.outcomes()["server_error"]["status"] == 503  # … nor a 503
    assert traced.requests[1] == plain.requests[1]
    assert [r for r in traced.recorded if r not in guarded] == [r for r in plain.recorded if r not in guarded]
    # No waits added: a retry would cost >= 0.9 s (recommended: 1 s +- 10 %), the 429's Retry-After 60 s.
    for scenario, seconds in traced.elapsed().items():
        assert seconds < plain.elapsed()[scenario] + 0.75, scenario
    assert all("traceparent" in h and "x-correlation-id" not in h and "baggage" not in h for h in traced.headers)

    service = traced.env["OTEL_SERVICE_NAME"]

    def ours() -> list[Any]:
        found = otlp_http.store.wait_for(
            lambda s: (
                s.resource.get("service.name") == service
                and s.kind == CLIENT
                and s.attributes.get("server.address") == "127.0.0.1"
            )
        )
        return found if len(found) >= len(plain.lines) else []

    clients = eventually(ours, timeout=10)
    assert len(clients) == len(plain.lines)  # one CLIENT span per physical request, contrib's stay silent
    assert {s.scope for s in clients} == {f"commtel.instrumentation.{library.removesuffix('-async')}"}
    operations = {
        s.span_id: s
        for s in otlp_http.store.spans
        if s.resource.get("service.name") == service and s.kind == INTERNAL and s.name.startswith("HTTP ")
    }
    by_path = {s.attributes["url.full"].split("/", 3)[3]: s for s in clients}
    throttled = by_path["api/b"]
    assert (
        throttled.attributes["commtel.ratelimit.remaining"] == 0
        and throttled.attributes["commtel.ratelimit.delay_s"] > 0
    )
    failed = operations[by_path["status/503"].parent_span_id]
    assert (failed.status_code, failed.attributes["error.type"]) == (ERROR, "503")
    assert failed.attributes["server.address"] == "127.0.0.1" and failed.attributes["url.full"].endswith("/status/503")
    succeeded = operations[by_path["api/items?page=2"].parent_span_id]
    assert succeeded.status_code == UNSET and succeeded.attributes["http.response.status_code"] == 200
    assert operations[by_path["api/items"].parent_span_id].status_code == ERROR  # unreachable: the library's error
    ids = [operations[s.parent_span_id].attributes["commtel.correlation_id"] for s in clients]
    assert len(set(ids)) == len(ids)  # a fresh correlation id per request, not one per process
    assert all(
        s.attributes["commtel.correlation_id"] == operations[s.parent_span_id].attributes["commtel.correlation_id"]
        for s in clients
    )

    [metrics] = traced.scraped
    commtel_lines = [line for line in metrics.splitlines() if line.startswith("commtel_")]
    assert any(
        line.startswith("commtel_operation_duration_seconds_count{")
        and 'operation="HTTP GET"' in line
        and 'platform="other"' in line
        for line in commtel_lines
    )
    assert not [line for line in commtel_lines if "127.0.0.1" in line]  # hosts never become label values
    # Unconfigured hosts add the operation histogram and nothing else (the README says so); the
    # configured host adds its retry and breaker metrics.
    unconfigured = {line.split("{")[0].split(" ")[0] for line in commtel_lines if '"localhost"' not in line}
    assert {name.rsplit("_", 1)[0] for name in unconfigured} == {"commtel_build", "commtel_operation_duration_seconds"}
    assert any(line.startswith("commtel_circuit_calls_total{") and '"localhost"' in line for line in commtel_lines)


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
def test_configured_breaker_is_caught_by_the_apps_own_except_clause(library, runs) -> None:
    """COMMTEL_POLICIES gives localhost a breaker: it opens, its rejection is one of the library's errors, exit 0."""
    plain, guarded = runs(library)
    assert len(plain.caught) == 4 and "CircuitOpenError" not in plain.caught and plain.failing_requests() == 4
    assert len(guarded.caught) == 4 and guarded.caught[-1] == "CircuitOpenError"  # caught by `except <library error>`
    assert guarded.failing_requests() == 3  # the open breaker sent nothing more


@pytest.mark.slow
def test_disabled_instrumentation_is_left_out(servers, otlp_http) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=commtel-httpx turns off just commtel's httpx instrumentor: contrib traces."""
    env = instrumented_env(
        "httpx", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="commtel-httpx"
    )
    run_app(servers, "httpx", instrumented=True, env=env)
    service = env["OTEL_SERVICE_NAME"]
    clients = otlp_http.store.wait_for(lambda s: s.resource.get("service.name") == service and s.kind == CLIENT)
    assert clients and {s.scope for s in clients} == {"opentelemetry.instrumentation.httpx"}


@pytest.mark.slow
def test_otel_propagators_decides_the_outgoing_headers(servers, otlp_http) -> None:
    """OTEL_PROPAGATORS=none: calls are still traced, but no request carries trace context (the default run's all do)."""
    env = instrumented_env("requests", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint, OTEL_PROPAGATORS="none")
    run = run_app(servers, "requests", instrumented=True, env=env)
    assert run.headers
    assert not [h for h in run.headers if "traceparent" in h or "baggage" in h]
    service = env["OTEL_SERVICE_NAME"]
    assert otlp_http.store.wait_for(lambda s: s.resource.get("service.name") == service and s.kind == CLIENT)
