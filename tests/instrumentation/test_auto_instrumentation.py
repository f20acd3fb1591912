"""``opentelemetry-instrument python app.py``: commtel's spans and metrics arrive without commtel imports."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from pathlib import Path

import pytest

from tests.harness.procs import free_port


APP = """
import sys, httpx, requests
base = sys.argv[1]
print(httpx.get(base + "/api/from-httpx").status_code, requests.get(base + "/api/from-requests").status_code,
      flush=True)
print("ready", flush=True)
sys.stdin.readline()
"""
BIN = Path(sys.executable).parent


def _run(tmp_path: Path, platform_url: str, otlp_endpoint: str, **extra: str) -> tuple[subprocess.Popen[str], int]:
    app = tmp_path / "small_app.py"
    app.write_text(APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "COMMTEL_", "PROMETHEUS_MULTIPROC"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": "small-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "COMMTEL_METRICS_PORT": str(port),
            "COMMTEL_POLICIES": "default = { retry = { max_attempts = 3, base_delay = 0.0 } }",
            **extra,
        }
    )
    proc = subprocess.Popen(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(app), platform_url],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def _ours(span) -> bool:
    """Spans of the small app (the session's receiver also gets the demo's)."""
    return span.resource.get("service.name") == "small-app"


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 0, err
    return out


@pytest.mark.slow
def test_spans_and_metrics_arrive_without_commtel_imports(tmp_path, platform, otlp_http) -> None:
    """Retried requests of an app that never imports commtel reach the OTLP receiver and /metrics."""
    otlp_http.store.clear()
    platform.fail_next(1)
    proc, port = _run(tmp_path, platform.url, otlp_http.endpoint)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["200", "200"]
        assert proc.stdout.readline().strip() == "ready"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        _finish(proc)
    assert (
        'commtel_retry_calls_total{operation="HTTP GET",platform="127.0.0.1",result="success_after_retry"} 1.0'
        in metrics
    )
    assert (
        'commtel_retry_calls_total{operation="HTTP GET",platform="127.0.0.1",result="success_first_try"} 1.0' in metrics
    )
    clients = otlp_http.store.wait_for(
        lambda s: _ours(s) and s.scope.startswith("commtel.instrumentation") and s.kind == 3
    )
    logical = otlp_http.store.wait_for(lambda s: _ours(s) and s.name == "HTTP GET")
    assert {s.scope for s in clients} == {"commtel.instrumentation.httpx", "commtel.instrumentation.requests"}
    assert len(clients) == 3  # one retry: 2 + 1 physical requests, each one CLIENT span (contrib's stay silent)
    assert len(logical) == 2 and all(s.resource["service.name"] == "small-app" for s in logical)
    assert not [s for s in otlp_http.store.spans if _ours(s) and s.kind == 3 and not s.scope.startswith("commtel")]


@pytest.mark.slow
def test_disabled_instrumentation_is_left_out(tmp_path, platform, otlp_http) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=commtel-httpx turns off just commtel's httpx instrumentor."""
    otlp_http.store.clear()
    proc, _ = _run(
        tmp_path, platform.url, otlp_http.endpoint, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="commtel-httpx,httpx,requests"
    )
    _finish(proc)
    clients = otlp_http.store.wait_for(lambda s: _ours(s) and s.kind == 3)
    assert {s.scope for s in clients} == {"commtel.instrumentation.requests"}
