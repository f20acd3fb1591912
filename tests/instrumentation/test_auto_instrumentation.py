"""``opentelemetry-instrument python app.py``: an unmodified app with commtel and contrib's instrumentations installed.

Per client library (httpx sync and async, requests, aiohttp), the app in ``zero_code_app.py``
runs plain and under ``opentelemetry-instrument`` against the same real local servers:
by default the outcomes — statuses, bodies, exception classes, physical requests, no added
waits — are identical, and the spans arrive at a real OTLP receiver. With resilience
configured in ``COMMTEL_POLICIES``, a breaker that opens is caught by the app's own
``except <library error>`` clause and the app exits 0.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from commtel.simulator import SimulatedPlatform
from tests.harness.procs import free_port


APP = Path(__file__).with_name("zero_code_app.py")
BIN = Path(sys.executable).parent
LIBRARIES = ["httpx", "httpx-async", "requests", "aiohttp"]
CLIENT, INTERNAL = 3, 1  # OTLP span kinds
UNSET, ERROR = 0, 2  # OTLP status codes
RESILIENCE = (
    "default = { retry = { max_attempts = 2, base_delay = 0.01, jitter = false },"
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
    requests: tuple[int, int]  # API calls the main and the tiny server handled
    recorded: list[tuple[str, str, int]]  # (method, path, status) answered by the main server, /slow aside

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Each scenario's outcome without its duration."""
        return {line["scenario"]: {k: v for k, v in line.items() if k != "elapsed"} for line in self.lines}

    def elapsed(self) -> dict[str, float]:
        return {line["scenario"]: line["elapsed"] for line in self.lines}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COMMTEL_", "PROMETHEUS_MULTIPROC"))}
    env.update(extra)
    return env


def run_app(
    servers: Servers,
    library: str,
    mode: str,
    *,
    instrumented: bool,
    env: dict[str, str] | None = None,
    while_running: Callable[[], None] | None = None,
) -> Run:
    """Run the app to its end (plain or under opentelemetry-instrument); *while_running* runs once it is done."""
    servers.main.reset()
    servers.tiny.reset()
    command = [sys.executable, str(APP), library, mode, servers.main.url, servers.tiny.url, servers.closed]
    if instrumented:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    proc = subprocess.Popen(
        command,
        env=env or _env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "done":
                break
            lines.append(json.loads(line))
        if while_running is not None:
            while_running()
    finally:
        _, err = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0, err
    recorded = [(r.method, r.path.split("?")[0], r.status) for r in servers.main.requests if "/slow" not in r.path]
    return Run(lines, (servers.main.stats.requests, servers.tiny.stats.requests), recorded)


def instrumented_env(library: str, **extra: str) -> dict[str, str]:
    defaults = {
        "OTEL_SERVICE_NAME": f"zero-code-{library}-{time.monotonic_ns()}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    return _env(**{**defaults, **extra})


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
def test_unmodified_app_behaves_the_same_and_is_traced(library, servers, otlp_http) -> None:
    """Default: statuses, bodies, exceptions, physical requests and timing as plain; spans at the OTLP receiver."""
    plain = run_app(servers, library, "observe", instrumented=False)
    metrics_port = free_port()
    scraped: list[str] = []

    def scrape() -> None:
        url = f"http://127.0.0.2:{metrics_port}/metrics"  # COMMTEL_METRICS_ADDR is honoured
        scraped.append(urllib.request.urlopen(url, timeout=5).read().decode())
        with pytest.raises(urllib.error.URLError):  # and nothing listens on the default address
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)

    env = instrumented_env(
        library,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
        COMMTEL_METRICS_PORT=str(metrics_port),
        COMMTEL_METRICS_ADDR="127.0.0.2",
    )
    traced = run_app(servers, library, "observe", instrumented=True, env=env, while_running=scrape)

    assert traced.outcomes() == plain.outcomes()
    assert traced.outcomes()["throttled"]["status"] == 429  # a 429 is not retried …
    assert traced.outcomes()["server_error"]["status"] == 503  # … nor a 503
    assert traced.requests == plain.requests and traced.recorded == plain.recorded
    # No waits added: a retry would cost >= 0.9 s (recommended: 1 s +- 10 %), the 429's Retry-After 60 s.
    for scenario, seconds in traced.elapsed().items():
        assert seconds < plain.elapsed()[scenario] + 0.75, scenario
    seen = [{k.lower(): v for k, v in r.headers.items()} for r in servers.main.requests]
    assert all("traceparent" in h and "x-correlation-id" not in h and "baggage" not in h for h in seen)

    service = env["OTEL_SERVICE_NAME"]
    ours = otlp_http.store.wait_for(lambda s: s.resource.get("service.name") == service and s.kind == CLIENT)
    deadline = time.monotonic() + 10
    while len(ours) < len(plain.lines) and time.monotonic() < deadline:
        ours = otlp_http.store.wait_for(lambda s: s.resource.get("service.name") == service and s.kind == CLIENT)
    assert len(ours) == len(plain.lines)  # one CLIENT span per physical request, contrib's stay silent
    assert {s.scope for s in ours} == {f"commtel.instrumentation.{library.removesuffix('-async')}"}
    operations = {
        s.span_id: s
        for s in otlp_http.store.spans
        if s.resource.get("service.name") == service and s.kind == INTERNAL and s.name.startswith("HTTP ")
    }
    by_path = {s.attributes["url.full"].split("/", 3)[3]: s for s in ours}
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
    ids = [operations[s.parent_span_id].attributes["commtel.correlation_id"] for s in ours]
    assert len(set(ids)) == len(ids)  # a fresh correlation id per request, not one per process
    assert all(
        s.attributes["commtel.correlation_id"] == operations[s.parent_span_id].attributes["commtel.correlation_id"]
        for s in ours
    )

    [metrics] = scraped
    commtel_lines = [line for line in metrics.splitlines() if line.startswith("commtel_")]
    assert any(
        line.startswith("commtel_operation_duration_seconds_count{")
        and 'operation="HTTP GET"' in line
        and 'platform="other"' in line
        for line in commtel_lines
    )
    assert not [line for line in commtel_lines if "127.0.0.1" in line]  # hosts never become label values
    assert not [line for line in commtel_lines if line.startswith(("commtel_retry_calls", "commtel_circuit_calls"))]


@pytest.mark.slow
@pytest.mark.parametrize("library", LIBRARIES)
def test_configured_breaker_is_caught_by_the_apps_own_except_clause(library, servers) -> None:
    """With COMMTEL_POLICIES, the breaker opens and its rejection is one of the library's errors: the app exits 0."""
    plain = run_app(servers, library, "breaker", instrumented=False)
    assert "CircuitOpenError" not in plain.lines[0]["breaker"] and plain.requests[0] == 4
    env = instrumented_env(library, OTEL_TRACES_EXPORTER="none", COMMTEL_POLICIES=RESILIENCE)
    guarded = run_app(servers, library, "breaker", instrumented=True, env=env)
    [line] = guarded.lines
    assert line["breaker"][-1] == "CircuitOpenError"  # caught by `except <library error>` in the app
    assert guarded.requests[0] == 3  # the open breaker sent nothing more


@pytest.mark.slow
def test_disabled_instrumentation_is_left_out(servers, otlp_http) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=commtel-httpx turns off just commtel's httpx instrumentor: contrib traces."""
    env = instrumented_env(
        "httpx", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="commtel-httpx"
    )
    run_app(servers, "httpx", "observe", instrumented=True, env=env)
    service = env["OTEL_SERVICE_NAME"]
    clients = otlp_http.store.wait_for(lambda s: s.resource.get("service.name") == service and s.kind == CLIENT)
    assert clients and {s.scope for s in clients} == {"opentelemetry.instrumentation.httpx"}
